"""The Typer application behind the `exportcheck` command."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Annotated

import typer

from exportcheck import __version__
from exportcheck.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, ExportcheckError, OutputError
from exportcheck.report import FAIL_ON_CHOICES, Report

app = typer.Typer(
    name="exportcheck",
    help="Prove that a PyTorch model was exported and deployed in eval mode.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

FormatOption = Annotated[
    str,
    typer.Option(
        "--format", "-f", help="Report format on stdout: text, json, junit, sarif, markdown."
    ),
]
OutputOption = Annotated[
    list[str] | None,
    typer.Option(
        "--output",
        "-o",
        help="Write the report to FILE instead of stdout, or FORMAT=FILE (repeatable).",
    ),
]
FailOnOption = Annotated[
    str,
    typer.Option("--fail-on", help="Exit 1 on findings at or above: error, warning, info, never."),
]


def fail(message: str, code: int) -> None:
    typer.echo(f"exportcheck: error: {message}", err=True)
    raise typer.Exit(code)


def run_guarded(action: Callable[[], int]) -> None:
    """Runs a command body; turns the library's errors into one line and an exit code."""
    try:
        code = action()
    except ExportcheckError as error:
        fail(str(error), error.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", EXIT_INTERRUPTED)
    except (typer.Exit, typer.BadParameter):
        raise
    except Exception as error:  # the one place an unexpected failure becomes a message
        if os.environ.get("EXPORTCHECK_DEBUG"):
            raise
        detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
        fail(
            f"internal error: {type(error).__name__}: {detail} "
            "(set EXPORTCHECK_DEBUG=1 for a traceback)",
            EXIT_INTERNAL,
        )
    else:
        raise typer.Exit(code)


def check_report_options(format_name: str, fail_on: str, outputs: list[str] | None) -> None:
    """Usage errors before any work starts."""
    from exportcheck.reporters import REPORTERS

    check_choice(format_name, list(REPORTERS), "--format")
    check_choice(fail_on, FAIL_ON_CHOICES, "--fail-on")
    for spec in outputs or []:
        name, sep, path = spec.partition("=")
        if sep and name in REPORTERS and not path:
            raise typer.BadParameter(f"{spec!r} names no file", param_hint="--output")


def check_choice(value: str, choices: tuple[str, ...] | list[str], option: str) -> str:
    if value not in choices:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(choices)}", param_hint=option)
    return value


def emit(report: Report, format_name: str, outputs: list[str] | None) -> None:
    """Renders the report in every requested format and writes each where asked."""
    from exportcheck.output import write_atomic
    from exportcheck.reporters import REPORTERS, render

    check_choice(format_name, list(REPORTERS), "--format")
    targets: list[tuple[str, str | None]] = []
    for spec in outputs or []:
        name, sep, path = spec.partition("=")
        if sep and name in REPORTERS:
            targets.append((name, path))
        else:
            targets.append((format_name, spec))
    if not any(path for _, path in targets if _ == format_name) or not targets:
        if not any(fmt == format_name for fmt, _ in targets):
            targets.insert(0, (format_name, None))
    for fmt, path in targets:
        text = render(report, fmt)
        if path is None:
            sys.stdout.write(text)
        else:
            if not path:
                raise OutputError("empty path after FORMAT=", subject="--output")
            write_atomic(path, text)


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"exportcheck {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=version_callback, is_eager=True, help="Show the version."
        ),
    ] = False,
) -> None:
    """Prove that a PyTorch model was exported and deployed in eval mode."""


@app.command("inspect")
def inspect_command(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Artifact files or directories (.onnx, .pt, .pth, .ts, .torchscript, .pt2)."
        ),
    ],
    format_name: FormatOption = "text",
    output: OutputOption = None,
    fail_on: FailOnOption = "error",
) -> None:
    """Read exported artifacts (never their weights) and report training-mode leftovers."""
    check_report_options(format_name, fail_on, output)

    def action() -> int:
        from exportcheck.inspection import inspect

        return finish(inspect(paths, fail_on=fail_on), format_name, output)

    run_guarded(action)


@app.command("rules")
def rules_command(
    format_name: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
) -> None:
    """List the rule catalogue."""
    from exportcheck.rules import RULES

    check_choice(format_name, ("text", "json"), "--format")
    if format_name == "json":
        import json

        rows = [
            {
                "slug": r.slug,
                "code": r.code,
                "severity": r.severity.label,
                "stage": r.stage,
                "summary": r.summary,
            }
            for r in RULES
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    width = max(len(r.slug) for r in RULES)
    for rule in RULES:
        typer.echo(
            f"{rule.code}  {rule.slug.ljust(width)}  {rule.severity.label:<7}  "
            f"{rule.stage:<7}  {rule.summary}"
        )


@app.command("explain")
def explain_command(rule: Annotated[str, typer.Argument(help="A rule slug or code.")]) -> None:
    """Print one rule's explanation: what it finds, why it is wrong, how to fix."""
    from exportcheck.rules import get_rule

    try:
        found = get_rule(rule)
    except KeyError as error:
        fail(str(error.args[0]), 2)
        return
    typer.echo(f"{found.code} {found.slug} ({found.severity.label}, {found.stage} stage)\n")
    typer.echo(found.doc())


FormatsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--formats",
        help="Export formats, comma-separated or repeated (default: all): "
        "onnx, onnx-legacy, torchscript-trace, torchscript-script, exported-program.",
    ),
]
DeviceOption = Annotated[
    str, typer.Option("--device", help="cpu, cuda or all (default: all that are available).")
]
InputShapeOption = Annotated[
    list[str] | None,
    typer.Option(
        "--input-shape", help="Example input shape like 1x3x224x224 or 2x128:int64 (repeatable)."
    ),
]
InputsOption = Annotated[
    str | None,
    typer.Option("--inputs", help="Example inputs file: .pt (loaded weights_only) or .npz."),
]
RtolOption = Annotated[
    float | None, typer.Option("--rtol", help="Relative tolerance (default per dtype).")
]
AtolOption = Annotated[
    float | None, typer.Option("--atol", help="Absolute tolerance (default per dtype).")
]


def split_formats(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def progress_printer() -> tuple[object, object]:
    """A rich status line on a terminal; nothing when stderr is not a TTY."""
    if not sys.stderr.isatty():
        return None, None
    from rich.console import Console

    status = Console(stderr=True).status("starting")
    return status, lambda step: status.update(step)


def run_with_progress(action: Callable[[object], Report]) -> Report:
    status, update = progress_printer()
    if status is None:
        return action(None)
    with status:  # type: ignore[attr-defined]
        return action(update)


def finish(report: Report, format_name: str, output: list[str] | None) -> int:
    for problem in report.errors:
        typer.echo(f"exportcheck: error: {problem.subject}: {problem.message}", err=True)
    emit(report, format_name, output)
    return report.exit_code()


@app.command("validate")
def validate_command(
    targets: Annotated[
        list[str],
        typer.Argument(
            help="file.py:callable, package.module:callable, or a directory of .py files with build()."
        ),
    ],
    formats: FormatsOption = None,
    device: DeviceOption = "all",
    input_shape: InputShapeOption = None,
    inputs: InputsOption = None,
    rtol: RtolOption = None,
    atol: AtolOption = None,
    out_dir: Annotated[
        str | None,
        typer.Option(
            "--out-dir",
            help="Keep the exported artifacts here (default: a temporary folder, removed).",
        ),
    ] = None,
    allow_tf32: Annotated[
        bool, typer.Option("--allow-tf32", help="Let the CUDA reference use TF32.")
    ] = False,
    probes: Annotated[
        bool, typer.Option("--probes/--no-probes", help="Run the behavioural probes.")
    ] = True,
    format_name: FormatOption = "text",
    output: OutputOption = None,
    fail_on: FailOnOption = "error",
) -> None:
    """Export the eval-mode model to every format and prove each artifact computes the same."""
    check_report_options(format_name, fail_on, output)
    check_choice(device, ("cpu", "cuda", "all"), "--device")

    def action() -> int:
        from exportcheck.validation import validate_targets

        report = run_with_progress(
            lambda update: validate_targets(
                targets,
                input_shapes=input_shape or (),
                inputs_file=inputs,
                fail_on=fail_on,
                progress=update,
                formats=split_formats(formats),
                devices=device,
                rtol=rtol,
                atol=atol,
                out_dir=out_dir,
                allow_tf32=allow_tf32,
                probes=probes,
            )
        )
        return finish(report, format_name, output)

    run_guarded(action)


@app.command("compare")
def compare_command(
    artifact: Annotated[
        str, typer.Argument(help="An exported file (.onnx, TorchScript .pt, .pt2).")
    ],
    against: Annotated[
        str,
        typer.Option("--against", help="The model: file.py:callable or package.module:callable."),
    ],
    device: DeviceOption = "all",
    input_shape: InputShapeOption = None,
    inputs: InputsOption = None,
    rtol: RtolOption = None,
    atol: AtolOption = None,
    allow_tf32: Annotated[
        bool, typer.Option("--allow-tf32", help="Let the CUDA reference use TF32.")
    ] = False,
    format_name: FormatOption = "text",
    output: OutputOption = None,
    fail_on: FailOnOption = "error",
) -> None:
    """Check a file someone else exported against the eval-mode model."""
    check_report_options(format_name, fail_on, output)
    check_choice(device, ("cpu", "cuda", "all"), "--device")

    def action() -> int:
        from exportcheck.validation import compare_target

        report = run_with_progress(
            lambda update: compare_target(
                artifact,
                against,
                input_shapes=input_shape or (),
                inputs_file=inputs,
                devices=device,
                rtol=rtol,
                atol=atol,
                allow_tf32=allow_tf32,
                progress=update,
                fail_on=fail_on,
            )
        )
        return finish(report, format_name, output)

    run_guarded(action)


@app.command("audit")
def audit_command(
    targets: Annotated[
        list[str], typer.Argument(help="file.py:callable, package.module:callable, or a directory.")
    ],
    input_shape: InputShapeOption = None,
    inputs: InputsOption = None,
    device: DeviceOption = "cpu",
    probes: Annotated[
        bool, typer.Option("--probes/--no-probes", help="Also run the behavioural probes.")
    ] = True,
    format_name: FormatOption = "text",
    output: OutputOption = None,
    fail_on: FailOnOption = "error",
) -> None:
    """Audit the model's modules (and probe its eval-mode behaviour) without exporting."""
    check_report_options(format_name, fail_on, output)
    check_choice(device, ("cpu", "cuda", "all"), "--device")

    def action() -> int:
        from exportcheck.validation import audit_targets

        report = run_with_progress(
            lambda update: audit_targets(
                targets,
                input_shapes=input_shape or (),
                inputs_file=inputs,
                fail_on=fail_on,
                probes=probes,
                devices=device,
                progress=update,
            )
        )
        return finish(report, format_name, output)

    run_guarded(action)


def main() -> None:
    app()


if __name__ == "__main__":
    main()

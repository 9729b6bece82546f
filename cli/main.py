"""The Typer application behind the `exportcheck` command: parse, call the library, render."""

from __future__ import annotations

import atexit
import json
import os
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from exportcheck import __version__
from exportcheck.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, ExportcheckError
from exportcheck.pipeline.gc_pause import gc_paused
from exportcheck.results.report import FAIL_ON_CHOICES, Report

app = typer.Typer(
    name="exportcheck",
    help="Prove that a PyTorch model was exported and deployed in eval mode.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

FormatOption = Annotated[
    str | None,
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
    str | None,
    typer.Option("--fail-on", help="Exit 1 on findings at or above: error, warning, info, never."),
]
ConfigOption = Annotated[
    str | None,
    typer.Option("--config", help="Settings file (default: [tool.exportcheck] in pyproject.toml)."),
]
FormatsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--formats",
        help="Export formats, comma-separated or repeated (default: all): onnx, "
        "onnx-legacy, torchscript-trace, torchscript-script, exported-program.",
    ),
]
DeviceOption = Annotated[
    str | None, typer.Option("--device", help="cpu, cuda or all (default: all available).")
]
InputShapeOption = Annotated[
    list[str] | None,
    typer.Option(
        "--input-shape", help="Example input shape like 1x3x224x224 or 2x128:int64 (repeatable)."
    ),
]
InputsOption = Annotated[
    str | None, typer.Option("--inputs", help="Example inputs: .pt (weights_only) or .npz.")
]
RtolOption = Annotated[
    float | None, typer.Option("--rtol", help="Relative tolerance (default per dtype).")
]
AtolOption = Annotated[
    float | None, typer.Option("--atol", help="Absolute tolerance (default per dtype).")
]
Tf32Option = Annotated[
    bool | None, typer.Option("--allow-tf32/--no-tf32", help="Let the CUDA reference use TF32.")
]
JobsOption = Annotated[
    int | None,
    typer.Option("--jobs", "-j", min=1, help="Targets validated in parallel worker processes."),
]
TimeoutOption = Annotated[
    float | None,
    typer.Option("--timeout", min=0.0, help="Seconds allowed per target (runs it in a worker)."),
]
ShardOption = Annotated[
    str | None, typer.Option("--shard", help="i/n: only this CI matrix job's share of the targets.")
]


def one_line(message: str) -> str:
    """Paths may hold newlines; an error must stay one line."""
    return message.replace("\r", "\\r").replace("\n", "\\n")


def fail(message: str, code: int) -> None:
    typer.echo(f"exportcheck: error: {one_line(message)}", err=True)
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
            f"internal error: {type(error).__name__}: {detail} (set EXPORTCHECK_DEBUG=1 for a traceback)",
            EXIT_INTERNAL,
        )
    else:
        raise typer.Exit(code)


def check_choice(value: str, choices: tuple[str, ...] | list[str], option: str) -> str:
    if value not in choices:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(choices)}", param_hint=option)
    return value


def settings_for(config: str | None, **overrides: Any) -> Any:
    """Settings from the config file, then the flags given; usage errors before any work."""
    from exportcheck.reporters import REPORTERS
    from exportcheck.settings.config import load_settings

    if overrides.get("format") is not None:
        check_choice(overrides["format"], list(REPORTERS), "--format")
    if overrides.get("fail_on") is not None:
        check_choice(overrides["fail_on"], FAIL_ON_CHOICES, "--fail-on")
    if overrides.get("device") is not None:
        check_choice(overrides["device"], ("cpu", "cuda", "all"), "--device")
    try:
        return load_settings(config, overrides=overrides)
    except ExportcheckError as error:
        fail(str(error), error.exit_code)


def output_targets(format_name: str, outputs: list[str] | None) -> list[tuple[str, str | None]]:
    from exportcheck.reporters import REPORTERS

    targets: list[tuple[str, str | None]] = []
    for spec in outputs or []:
        name, sep, path = spec.partition("=")
        if sep and name in REPORTERS:
            if not path:
                raise typer.BadParameter(f"{spec!r} names no file", param_hint="--output")
            targets.append((name, path))
        else:
            targets.append((format_name, spec))
    if not any(fmt == format_name for fmt, _ in targets):
        targets.insert(0, (format_name, None))
    return targets


def emit(report: Report, targets: list[tuple[str, str | None]]) -> None:
    from exportcheck.reporters import render
    from exportcheck.reporters.files import write_atomic

    for fmt, path in targets:
        with gc_paused():
            text = render(report, fmt)
        if path is None:
            sys.stdout.write(text)
        else:
            write_atomic(path, text)


def finish(report: Report, settings: Any, outputs: list[str] | None) -> int:
    from exportcheck.settings.policy import apply_policy

    report = apply_policy(report, settings)
    for problem in report.errors:
        typer.echo(
            f"exportcheck: error: {one_line(f'{problem.subject}: {problem.message}')}", err=True
        )
    emit(report, output_targets(settings.format, outputs))
    return report.exit_code()


def split_formats(values: list[str] | None) -> tuple[str, ...] | None:
    if not values:
        return None
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


def run_with_progress(action: Callable[[Callable[[str], None] | None], Report]) -> Report:
    """A rich status line on a terminal; nothing extra when stderr is not a TTY."""
    if not sys.stderr.isatty():
        return action(None)
    from rich.console import Console

    with Console(stderr=True).status("starting") as status:
        return action(lambda step: status.update(step))


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
    format_name: FormatOption = None,
    output: OutputOption = None,
    fail_on: FailOnOption = None,
    config: ConfigOption = None,
) -> None:
    """Read exported artifacts (never their weights) and report training-mode leftovers."""
    settings = settings_for(config, format=format_name, fail_on=fail_on)
    output_targets(settings.format, output)

    def action() -> int:
        from exportcheck.pipeline.inspection import inspect

        return finish(inspect(paths, fail_on=settings.fail_on), settings, output)

    # Reading a graph allocates up to millions of objects that reference counting frees; the
    # cyclic collector's passes over them, and over onnx's and numpy's imports, only add time
    # (30 ms of a 100k-node inspection, measured). Paused for the command, restored after.
    with gc_paused():
        run_guarded(action)


def _validation_options(settings: Any) -> dict[str, Any]:
    from exportcheck.pipeline.validation import Tolerances

    return dict(
        formats=settings.formats,
        devices=settings.device,
        tolerances=Tolerances(settings.rtol, settings.atol, dict(settings.output_tolerances)),
        allow_tf32=settings.allow_tf32,
    )


@app.command("validate")
def validate_command(
    targets: Annotated[
        list[str],
        typer.Argument(
            help="file.py:callable, package.module:callable, or a directory of .py files with build()."
        ),
    ],
    formats: FormatsOption = None,
    device: DeviceOption = None,
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
    allow_tf32: Tf32Option = None,
    probes: Annotated[
        bool, typer.Option("--probes/--no-probes", help="Run the behavioural probes.")
    ] = True,
    jobs: JobsOption = None,
    timeout: TimeoutOption = None,
    shard: ShardOption = None,
    format_name: FormatOption = None,
    output: OutputOption = None,
    fail_on: FailOnOption = None,
    config: ConfigOption = None,
) -> None:
    """Export the eval-mode model to every format and prove each artifact computes the same."""
    settings = settings_for(
        config,
        format=format_name,
        fail_on=fail_on,
        device=device,
        rtol=rtol,
        atol=atol,
        formats=split_formats(formats),
        allow_tf32=allow_tf32,
        jobs=jobs,
        timeout=timeout,
    )
    output_targets(settings.format, output)

    def action() -> int:
        from exportcheck.pipeline.parallel import run_targets

        options = _validation_options(settings)
        report = run_with_progress(
            lambda update: run_targets(
                targets,
                jobs=settings.jobs,
                timeout=settings.timeout,
                shard=shard,
                progress=update,
                command="validate",
                input_shapes=tuple(input_shape or ()),
                inputs_file=inputs,
                fail_on=settings.fail_on,
                out_dir=out_dir,
                probes=probes,
                **options,
            )
        )
        return finish(report, settings, output)

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
    device: DeviceOption = None,
    input_shape: InputShapeOption = None,
    inputs: InputsOption = None,
    rtol: RtolOption = None,
    atol: AtolOption = None,
    allow_tf32: Tf32Option = None,
    format_name: FormatOption = None,
    output: OutputOption = None,
    fail_on: FailOnOption = None,
    config: ConfigOption = None,
) -> None:
    """Check a file someone else exported against the eval-mode model."""
    settings = settings_for(
        config,
        format=format_name,
        fail_on=fail_on,
        device=device,
        rtol=rtol,
        atol=atol,
        allow_tf32=allow_tf32,
    )
    output_targets(settings.format, output)

    def action() -> int:
        from exportcheck.pipeline.validation import compare_target

        options = _validation_options(settings)
        options.pop("formats")
        report = run_with_progress(
            lambda update: compare_target(
                artifact,
                against,
                input_shapes=tuple(input_shape or ()),
                inputs_file=inputs,
                progress=update,
                fail_on=settings.fail_on,
                **options,
            )
        )
        return finish(report, settings, output)

    run_guarded(action)


@app.command("audit")
def audit_command(
    targets: Annotated[
        list[str], typer.Argument(help="file.py:callable, package.module:callable, or a directory.")
    ],
    input_shape: InputShapeOption = None,
    inputs: InputsOption = None,
    device: Annotated[
        str | None, typer.Option("--device", help="cpu, cuda or all (default: cpu).")
    ] = None,
    probes: Annotated[
        bool, typer.Option("--probes/--no-probes", help="Also run the behavioural probes.")
    ] = True,
    jobs: JobsOption = None,
    timeout: TimeoutOption = None,
    shard: ShardOption = None,
    format_name: FormatOption = None,
    output: OutputOption = None,
    fail_on: FailOnOption = None,
    config: ConfigOption = None,
) -> None:
    """Audit the model's modules (and probe its eval-mode behaviour) without exporting."""
    settings = settings_for(
        config,
        format=format_name,
        fail_on=fail_on,
        device=device or "cpu",
        jobs=jobs,
        timeout=timeout,
    )
    output_targets(settings.format, output)

    def action() -> int:
        from exportcheck.pipeline.parallel import run_targets

        report = run_with_progress(
            lambda update: run_targets(
                targets,
                jobs=settings.jobs,
                timeout=settings.timeout,
                shard=shard,
                progress=update,
                command="audit",
                input_shapes=tuple(input_shape or ()),
                inputs_file=inputs,
                fail_on=settings.fail_on,
                probes=probes,
                devices=settings.device,
            )
        )
        return finish(report, settings, output)

    run_guarded(action)


@app.command("config")
def config_command(
    config: ConfigOption = None,
    format_name: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
) -> None:
    """Print the effective settings and where each came from."""
    check_choice(format_name, ("text", "json"), "--format")
    settings = settings_for(config)
    values = settings.to_dict()
    if format_name == "json":
        typer.echo(
            json.dumps(
                {
                    "config_file": settings.config_file,
                    "settings": {
                        k: {"value": v, "source": settings.source(k.replace("-", "_"))}
                        for k, v in values.items()
                    },
                },
                indent=2,
            )
        )
        return
    typer.echo(f"config file: {settings.config_file or '(none found)'}")
    width = max(len(k) for k in values)
    for key, value in values.items():
        typer.echo(
            f"{key.ljust(width)}  {json.dumps(value)}  ({settings.source(key.replace('-', '_'))})"
        )


@app.command("rules")
def rules_command(
    format_name: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
) -> None:
    """List the rule catalogue."""
    from exportcheck.rules import RULES

    check_choice(format_name, ("text", "json"), "--format")
    if format_name == "json":
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
            f"{rule.code}  {rule.slug.ljust(width)}  {rule.severity.label:<7}  {rule.stage:<7}  {rule.summary}"
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


def main() -> None:
    """The console script: runs the app, then leaves without tearing the interpreter down.

    Exit handlers still run and both output streams are flushed; what is skipped is the
    object-by-object teardown of the interpreter, mostly the destructors of onnx's C++ operator
    registry and numpy's state: about 30 ms of every run, measured, as long as a 100k-node
    inspection's own work. mypy leaves the same way.
    """
    try:
        app()
        code: object = 0
    except SystemExit as exit_:
        code = exit_.code
    if code is None:
        code = 0
    elif not isinstance(code, int):
        sys.stderr.write(f"{code}\n")
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be said
            pass
    os._exit(code)


if __name__ == "__main__":
    main()

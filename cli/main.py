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
    except typer.Exit:
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
    check_choice(fail_on, FAIL_ON_CHOICES, "--fail-on")

    def action() -> int:
        from exportcheck.inspection import inspect

        report = inspect(paths, fail_on=fail_on)
        for problem in report.errors:
            typer.echo(f"exportcheck: error: {problem.subject}: {problem.message}", err=True)
        emit(report, format_name, output)
        return report.exit_code()

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


def main() -> None:
    app()


if __name__ == "__main__":
    main()

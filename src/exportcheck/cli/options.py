"""The options the commands share, each defined once as a field of an option group.

A command names the groups it takes in its signature (`report: ReportOptions`); `with_options`
replaces that parameter with the group's fields for Typer, and hands the command one frozen
dataclass per group. Typer reads the signature, so the fields' Annotated types are the options.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, get_type_hints

import typer

ConfigPath = Annotated[
    str | None,
    typer.Option("--config", help="Settings file (default: [tool.exportcheck] in pyproject.toml)."),
]


@dataclass(frozen=True)
class ReportOptions:
    """Where the report goes, in which format, what fails the run, and how chatty it is."""

    format_name: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="Report format on stdout: text, json, junit, sarif, markdown, github.",
        ),
    ] = None
    output: Annotated[
        list[str] | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the report to FILE (format from .json/.sarif/.xml/.md; --format for "
            ".txt, .log or no suffix), or FORMAT=FILE (repeatable). Missing folders are created.",
        ),
    ] = None
    fail_on: Annotated[
        str | None,
        typer.Option(
            "--fail-on", help="Exit 1 on findings at or above: error, warning, info, never."
        ),
    ] = None
    config: ConfigPath = None
    select: Annotated[
        list[str] | None,
        typer.Option(
            "--select",
            help="Only these rules (slugs or codes, comma-separated or repeated); replaces the "
            "config's select.",
        ),
    ] = None
    ignore: Annotated[
        list[str] | None,
        typer.Option(
            "--ignore",
            help="Leave out these rules (slugs or codes, comma-separated or repeated); adds to "
            "the config's ignore-rules.",
        ),
    ] = None
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress lines or status on stderr.")
    ] = False
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Text report: every comparison, and info-level problems."
        ),
    ] = False


@dataclass(frozen=True)
class InputOptions:
    """The model's example inputs and the devices it runs on."""

    input_shape: Annotated[
        list[str] | None,
        typer.Option(
            "--input-shape",
            help="Example input shape like 1x3x224x224 or 2x128:int64 (repeatable).",
        ),
    ] = None
    inputs: Annotated[
        str | None, typer.Option("--inputs", help="Example inputs: .pt (weights_only) or .npz.")
    ] = None
    device: Annotated[
        str | None,
        typer.Option(
            "--device",
            help="cpu, cuda or all (default: all available, cpu for audit); a device named "
            "here must exist.",
        ),
    ] = None


@dataclass(frozen=True)
class ComparisonOptions:
    """How artifacts are judged against the eval-mode reference."""

    rtol: Annotated[
        float | None, typer.Option("--rtol", help="Relative tolerance (default per dtype).")
    ] = None
    atol: Annotated[
        float | None, typer.Option("--atol", help="Absolute tolerance (default per dtype).")
    ] = None
    allow_tf32: Annotated[
        bool | None,
        typer.Option("--allow-tf32/--no-tf32", help="Let the CUDA reference use TF32."),
    ] = None
    require_comparisons: Annotated[
        bool | None,
        typer.Option(
            "--require-comparisons/--allow-no-comparisons",
            help="Fail (exit 1) when every numerical comparison was skipped, e.g. no GPU.",
        ),
    ] = None
    runtimes: Annotated[
        list[str] | None,
        typer.Option(
            "--runtimes",
            help="Runtimes to run artifacts on, comma-separated or repeated (default: every "
            "installed one): onnxruntime, openvino, tract, torch. One named here must be installed.",
        ),
    ] = None
    localize: Annotated[
        bool,
        typer.Option(
            "--localize",
            help="Trace every artifact to its first diverging operation, not only those whose "
            "mismatch no finding explains.",
        ),
    ] = False


@dataclass(frozen=True)
class ManyTargetOptions:
    """How a list of targets is run: worker processes, time limits, CI shards."""

    jobs: Annotated[
        int | None,
        typer.Option("--jobs", "-j", min=1, help="Targets validated in parallel worker processes."),
    ] = None
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", help="Seconds allowed per target (runs it in a worker)."),
    ] = None
    shard: Annotated[
        str | None,
        typer.Option("--shard", help="i/n: only this CI matrix job's share of the targets."),
    ] = None
    probes: Annotated[
        bool, typer.Option("--probes/--no-probes", help="Run the behavioural probes.")
    ] = True


OPTION_GROUPS = (ReportOptions, InputOptions, ComparisonOptions, ManyTargetOptions)


@functools.cache
def _group_hints(group: type) -> dict[str, Any]:
    """A group's field annotations, evaluated once: every command start pays for them."""
    return get_type_hints(group, include_extras=True)


def with_options(run: Callable[[Callable[[], int]], None]) -> Callable[[Callable[..., int]], Any]:
    """A decorator for commands: expands option-group parameters into their fields, and runs
    the command body through `run`, the one place that turns errors into exit codes."""

    def decorate(body: Callable[..., int]) -> Callable[..., None]:
        hints = get_type_hints(body, include_extras=True)
        own: list[inspect.Parameter] = []
        groups: dict[str, type] = {}
        for parameter in inspect.signature(body).parameters.values():
            annotation = hints[parameter.name]
            if annotation in OPTION_GROUPS:
                groups[parameter.name] = annotation
            else:
                own.append(parameter.replace(annotation=annotation))
        expanded = own + [
            inspect.Parameter(
                field.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=field.default,
                annotation=_group_hints(group)[field.name],
            )
            for group in groups.values()
            for field in dataclasses.fields(group)
        ]

        @functools.wraps(body)
        def command(**values: Any) -> None:
            arguments = {p.name: values.pop(p.name) for p in own}
            for name, group in groups.items():
                arguments[name] = group(
                    **{field.name: values.pop(field.name) for field in dataclasses.fields(group)}
                )
            run(lambda: body(**arguments))

        command.__signature__ = inspect.Signature(expanded)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in expanded}
        del command.__wrapped__  # Typer must see the expanded signature, not the body's
        return command

    return decorate

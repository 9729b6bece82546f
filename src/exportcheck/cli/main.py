"""The Typer application behind the `exportcheck` command: parse, call the library, render."""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any

import typer

from exportcheck import __version__
from exportcheck.cli.options import (
    ComparisonOptions,
    ConfigPath,
    InputOptions,
    ManyTargetOptions,
    ReportOptions,
    with_options,
)
from exportcheck.cli.process import (
    Terminated,
    install_signal_handlers,
    leave_if_forked,
    progress_reporter,
    silence_stdout,
    user_code_contained,
    write_stderr,
    write_stdout,
)
from exportcheck.errors import (
    EXIT_INPUT,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    ExportcheckError,
    ForkedChildError,
    UsageError,
)
from exportcheck.pipeline.extras import require_validate_extra

if TYPE_CHECKING:
    from exportcheck.results.report import Report

app = typer.Typer(
    name="exportcheck",
    help="Prove that a PyTorch model was exported and deployed in eval mode.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    # Rich panels for a person at a terminal; plain Click text for a pipe or a CI log, which
    # would get no colours from rich anyway, without its 80 ms import on every start.
    rich_markup_mode="rich" if sys.stdout.isatty() and sys.stderr.isatty() else None,
)

ListingFormat = Annotated[str, typer.Option("--format", "-f", help="text or json.")]
DEVICES = ("cpu", "cuda", "all")
_OWNER = os.getpid()


def gc_paused() -> contextlib.AbstractContextManager[None]:
    """The collector paused for a command (graph_checks.gc_pause), imported when a command runs:
    its package loads the readers and rules, which `--help` never needs."""
    from exportcheck.graph_checks.gc_pause import gc_paused as paused

    return paused()


def one_line(message: str) -> str:
    """Paths may hold newlines, escape sequences and bidi controls; an error must stay one line
    that reads as what it says."""
    from exportcheck.reporters.escaping import printable

    return printable(message.replace("\r", "\\r").replace("\n", "\\n"))


def error_line(message: str) -> None:
    write_stderr(f"exportcheck: error: {one_line(message)}\n")


def exit_code_of(action: Callable[[], int]) -> int:
    """Runs a command body: the one place errors become a message and an exit code."""
    try:
        return action()
    except ExportcheckError as error:
        leave_if_forked(_OWNER)
        error_line(str(error))
        return error.exit_code
    except ForkedChildError:
        leave_if_forked(_OWNER)
        raise
    except KeyboardInterrupt:
        error_line("interrupted")
        return EXIT_INTERRUPTED
    except Terminated as signal_:
        error_line(f"terminated by signal {signal_.signum}; temporary files removed")
        return signal_.exit_code
    except SystemExit as exit_:  # the user's code called sys.exit outside a target's build
        leave_if_forked(_OWNER)
        error_line(f"the model's code called sys.exit({exit_.code!r}) before the report was done")
        return EXIT_INPUT
    except Exception as error:
        leave_if_forked(_OWNER)
        if os.environ.get("EXPORTCHECK_DEBUG"):
            raise
        detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
        error_line(
            f"internal error: {type(error).__name__}: {detail} "
            "(set EXPORTCHECK_DEBUG=1 for a traceback)"
        )
        return EXIT_INTERNAL


def run_command(action: Callable[[], int]) -> None:
    raise typer.Exit(exit_code_of(action))


command = with_options(run_command)


def check_choice(value: str | None, choices: Sequence[str], option: str) -> None:
    if value is not None and value not in choices:
        raise UsageError(f"{value!r} is not one of {', '.join(choices)}", subject=option)


def load_settings(report: ReportOptions, **overrides: Any) -> Any:
    """Settings from the config file, then the flags given; checked before any work."""
    from exportcheck.reporters import REPORTERS
    from exportcheck.settings.config import load_settings as load

    if report.quiet and report.verbose:
        raise UsageError("--quiet and --verbose contradict each other; give one of them")
    check_choice(report.format_name, list(REPORTERS), "--format")
    from exportcheck.results.report import FAIL_ON_CHOICES

    check_choice(report.fail_on, FAIL_ON_CHOICES, "--fail-on")
    check_choice(overrides.get("device"), DEVICES, "--device")
    return load(
        report.config,
        overrides={
            **overrides,
            "format": report.format_name,
            "fail_on": report.fail_on,
            "select": comma_separated(report.select),
            "ignore_rules": comma_separated(report.ignore),
        },
    )


# Report file names that say nothing of a format: they get --format's.
UNTYPED_SUFFIXES = ("", ".txt", ".log")


def output_format(path: str, format_name: str) -> str:
    """The format a report file's suffix asks for; a suffix no reporter writes is a usage
    error, so `-o report.html` never silently holds the text report."""
    from exportcheck.reporters.files import REPORT_SUFFIXES

    suffix = os.path.splitext(path)[1].lower()
    if suffix in UNTYPED_SUFFIXES or (os.path.exists(path) and not os.path.isfile(path)):
        return format_name  # a pipe or a device is a stream, whatever its name
    if suffix not in REPORT_SUFFIXES:
        known = ", ".join(f"{s} ({f})" for s, f in REPORT_SUFFIXES.items())
        raise UsageError(
            f"no report format writes {suffix!r} files ({known}; .txt takes --format's); "
            "name one as FORMAT=FILE",
            subject="--output",
        )
    return REPORT_SUFFIXES[suffix]


def destinations(
    format_name: str, outputs: list[str] | None, **run: Any
) -> list[tuple[str, str | None]]:
    """(format, file or None for stdout) for each report; every file checked before any work:
    first that it is none of the run's inputs (`run`: see refuse_overwriting_inputs), then that
    a format writes it."""
    from exportcheck.reporters.files import parse_output_spec, prepare_destination

    given: list[tuple[str | None, str]] = []
    for spec in outputs or []:
        named, path = parse_output_spec(spec)
        prepare_destination(path)
        given.append((named, path))
    refuse_overwriting_inputs([path for _, path in given], **run)
    chosen: list[tuple[str, str | None]] = [
        (named or output_format(path, format_name), path) for named, path in given
    ]
    if not any(fmt == format_name for fmt, _ in chosen):
        chosen.insert(0, (format_name, None))
    return chosen


def refuse_overwriting_inputs(
    paths: list[str],
    out_dir: str | None = None,
    formats: Sequence[str] | None = None,
    **inputs: Any,
) -> None:
    """Exit 2 before any work when a report, the artifact folder or an artifact to be written
    there is one of the run's inputs."""
    from exportcheck.reporters.files import refuse_inputs
    from exportcheck.targets.inputs import run_inputs

    if not paths and out_dir is None:
        return
    artifacts = _planned_artifacts(out_dir, inputs.get("targets", ()), formats)
    read = run_inputs(destinations=paths + artifacts, **inputs)
    for path in paths:
        refuse_inputs(path, read, "--output")
    for path in [out_dir, *artifacts] if out_dir else []:
        refuse_inputs(path, read, "--out-dir")


def _planned_artifacts(
    out_dir: str | None, targets: Sequence[str], formats: Sequence[str] | None
) -> list[str]:
    if out_dir is None:
        return []
    from exportcheck.pipeline.validation import planned_artifacts
    from exportcheck.targets.python_targets import expand_targets

    return planned_artifacts(out_dir, expand_targets(targets), formats)


def report_width() -> int | None:
    """`COLUMNS` when set, the terminal's width on a TTY, else None: unwrapped lines for a
    pipe, a file or a CI log, where `grep` and problem matchers read one item a line."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and 0 < len(columns) <= 4 and int(columns) > 0:
        return int(columns)
    if sys.stdout.isatty():
        return shutil.get_terminal_size((100, 24)).columns
    return None


def finish(
    report: Report,
    settings: Any,
    chosen: list[tuple[str, str | None]],
    options: ReportOptions,
) -> int:
    from exportcheck.reporters import render
    from exportcheck.reporters.files import write_atomic
    from exportcheck.settings.policy import apply_policy

    leave_if_forked(_OWNER)
    report = replace(
        apply_policy(report, settings), require_comparisons=settings.require_comparisons
    )
    for problem in report.errors:
        error_line(f"{problem.subject}: {problem.message}")
    if report.require_comparisons:
        for subject in report.uncompared:
            error_line(
                f"{subject}: no comparison ran (every one skipped); comparisons are required"
            )
    for fmt, path in chosen:
        with gc_paused():
            text = render(report, fmt, width=report_width(), verbose=options.verbose)
        if path is None:
            write_stdout(text)
        else:
            write_atomic(path, text)
    return report.exit_code()


def comma_separated(values: list[str] | None) -> tuple[str, ...] | None:
    """Values of a repeatable flag, each of which may list several: `--formats onnx,onnx-legacy`."""
    if not values:
        return None
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


def run_user_code(quiet: bool, work: Callable[[Callable[[str], None] | None], Report]) -> Report:
    """Runs work that executes the user's code, with progress, away from the report stream."""
    with progress_reporter(quiet) as progress, user_code_contained(_OWNER):
        return work(progress)


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
@command
def inspect_command(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Artifact files or directories (.onnx, .pt, .pth, .ts, .torchscript, .pt2).",
            metavar="PATH...",
        ),
    ],
    report: ReportOptions,
    only_artifacts: Annotated[
        bool,
        typer.Option(
            "--only-artifacts",
            help="Pass over files that are not export artifacts (a TypeScript .ts, a torch.save "
            "checkpoint) with a note instead of failing, as the pre-commit hook does.",
        ),
    ] = False,
) -> int:
    """Read exported artifacts (never their weights) and report training-mode leftovers."""
    from exportcheck.pipeline.inspection import inspect

    settings = load_settings(report)
    chosen = destinations(
        settings.format, report.output, models=paths, config_file=settings.config_file
    )
    # Reading a graph allocates up to millions of objects that reference counting frees; the
    # cyclic collector's passes over them, and over onnx's and numpy's imports, only add time
    # (30 ms of a 100k-node inspection, measured). Paused for the command, restored after.
    with gc_paused():
        with user_code_contained(_OWNER):
            found = inspect(paths, fail_on=settings.fail_on, only_artifacts=only_artifacts)
        return finish(found, settings, chosen, report)


def model_settings(report: ReportOptions, model: InputOptions, **overrides: Any) -> Any:
    """Settings for a command that runs models: malformed `--input-shape`s, a missing inputs
    file and a device this machine cannot have fail before torch is imported, once rather than
    per target."""
    from exportcheck.pipeline.validation import check_run_flags
    from exportcheck.targets.python_targets import parse_shape

    for text in model.input_shape or ():
        parse_shape(text)
    settings = load_settings(report, **overrides)
    check_run_flags(settings.device, model.inputs)
    return settings


def comparison_settings(
    report: ReportOptions, model: InputOptions, judged: ComparisonOptions, **more: Any
) -> Any:
    """Settings for validate and compare: a runtime named but not installed fails here too,
    before torch is imported."""
    from exportcheck.pipeline.validation import check_run_flags

    settings = model_settings(
        report,
        model,
        device=model.device,
        rtol=judged.rtol,
        atol=judged.atol,
        allow_tf32=judged.allow_tf32,
        require_comparisons=judged.require_comparisons,
        runtimes=comma_separated(judged.runtimes),
        **more,
    )
    check_run_flags(None, None, settings.runtimes)
    return settings


def comparison_options(settings: Any) -> dict[str, Any]:
    from exportcheck.pipeline.validation import Tolerances

    return dict(
        devices=settings.device,
        tolerances=Tolerances(settings.rtol, settings.atol, dict(settings.output_tolerances)),
        allow_tf32=settings.allow_tf32,
        runtimes=settings.runtimes,
    )


@app.command("validate")
@command
def validate_command(
    targets: Annotated[
        list[str],
        typer.Argument(
            help="file.py:callable, package.module:callable, or a directory of .py files with build().",
            metavar="TARGET...",
        ),
    ],
    formats: Annotated[
        list[str] | None,
        typer.Option(
            "--formats",
            help="Export formats, comma-separated or repeated (default: all): onnx, "
            "onnx-legacy, torchscript-trace, torchscript-script, exported-program.",
        ),
    ] = None,
    out_dir: Annotated[
        str | None,
        typer.Option(
            "--out-dir",
            help="Keep the exported artifacts here (default: a temporary folder, removed).",
        ),
    ] = None,
    *,
    model: InputOptions,
    judged: ComparisonOptions,
    many: ManyTargetOptions,
    report: ReportOptions,
) -> int:
    """Export the eval-mode model to every format and prove each artifact computes the same."""
    require_validate_extra("exportcheck validate")
    from exportcheck.pipeline.parallel import run_targets

    settings = comparison_settings(
        report,
        model,
        judged,
        formats=comma_separated(formats),
        jobs=many.jobs,
        timeout=many.timeout,
    )
    chosen = destinations(
        settings.format,
        report.output,
        out_dir=out_dir,
        formats=settings.formats,
        targets=targets,
        inputs_file=model.inputs,
        config_file=settings.config_file,
    )
    found = run_user_code(
        report.quiet,
        lambda progress: run_targets(
            targets,
            jobs=settings.jobs,
            timeout=settings.timeout,
            shard=many.shard,
            progress=progress,
            command="validate",
            end_descendants=True,
            input_shapes=tuple(model.input_shape or ()),
            inputs_file=model.inputs,
            fail_on=settings.fail_on,
            out_dir=out_dir,
            probes=many.probes,
            formats=settings.formats,
            localize=judged.localize,
            **comparison_options(settings),
        ),
    )
    return finish(found, settings, chosen, report)


@app.command("compare")
@command
def compare_command(
    artifact: Annotated[
        str,
        typer.Argument(help="An exported file (.onnx, TorchScript .pt, .pt2).", metavar="ARTIFACT"),
    ],
    against: Annotated[
        str,
        typer.Option(
            "--against",
            help="The model: file.py:callable or package.module:callable; or an ONNX file "
            "(BEFORE) that ARTIFACT was made from, to see what changed the mode.",
        ),
    ],
    *,
    model: InputOptions,
    judged: ComparisonOptions,
    report: ReportOptions,
) -> int:
    """Check a file someone else exported against the eval-mode model, or (--against
    BEFORE.onnx) an optimizer's output against its input: what changed the mode."""
    require_validate_extra("exportcheck compare")
    from exportcheck.pipeline.repairing import is_artifact_reference
    from exportcheck.pipeline.validation import compare_target

    if is_artifact_reference(against):
        return compare_artifact_reference(artifact, against, model, report)

    settings = comparison_settings(report, model, judged)
    chosen = destinations(
        settings.format,
        report.output,
        models=[artifact],
        targets=[against],
        inputs_file=model.inputs,
        config_file=settings.config_file,
    )
    found = run_user_code(
        report.quiet,
        lambda progress: compare_target(
            artifact,
            against,
            input_shapes=tuple(model.input_shape or ()),
            inputs_file=model.inputs,
            progress=progress,
            fail_on=settings.fail_on,
            localize=judged.localize,
            **comparison_options(settings),
        ),
    )
    return finish(found, settings, chosen, report)


def write_rendered(text: str, outputs: list[str] | None) -> None:
    from exportcheck.reporters.files import write_atomic

    write_stdout(text)
    for path in outputs or []:
        write_atomic(path, text)


def compare_artifact_reference(
    after: str, before: str, model: InputOptions, report: ReportOptions
) -> int:
    """`compare AFTER --against BEFORE`: the mode-relevant changes and the outputs measured."""
    from exportcheck.pipeline.repairing import compare_with_artifact
    from exportcheck.reporters.repairs import MODE_CHANGE_REPORTERS

    format_name = report.format_name or "text"
    check_choice(format_name, list(MODE_CHANGE_REPORTERS), "--format")
    refuse_overwriting_inputs(list(report.output or []), models=[after, before])
    for text in model.input_shape or ():
        from exportcheck.targets.python_targets import parse_shape

        parse_shape(text)
    found = compare_with_artifact(after, before, input_shapes=tuple(model.input_shape or ()))
    write_rendered(MODE_CHANGE_REPORTERS[format_name](found), report.output)
    return found.exit_code()


@app.command("fix")
@command
def fix_command(
    artifact: Annotated[
        str,
        typer.Argument(help="A training-mode export (.onnx or .pt2).", metavar="ARTIFACT"),
    ],
    output: Annotated[
        str,
        typer.Option(
            "--output", "-o", help="The repaired file to write (never the input).", metavar="FIXED"
        ),
    ],
    against: Annotated[
        str | None,
        typer.Option(
            "--against",
            help="The model (file.py:callable): prove the repair against it on every runtime.",
        ),
    ] = None,
    format_name: ListingFormat = "text",
    report_file: Annotated[
        str | None,
        typer.Option("--report", help="Also write the diff and proof to this file."),
    ] = None,
    *,
    model: InputOptions,
) -> int:
    """Repair a training-mode artifact, write it to FIXED, and prove the repair."""
    require_validate_extra("exportcheck fix")
    from exportcheck.pipeline.repairing import fix
    from exportcheck.reporters.repairs import REPAIR_REPORTERS

    check_choice(format_name, list(REPAIR_REPORTERS), "--format")
    settings = model_settings(ReportOptions(), model, device=model.device or "cpu")
    reports = [report_file] if report_file else []
    refuse_overwriting_inputs(
        [output, *reports], models=[artifact], targets=[against] if against else []
    )
    result = run_user_code(
        False,
        lambda progress: fix(
            artifact,
            output,
            against,
            input_shapes=tuple(model.input_shape or ()),
            inputs_file=model.inputs,
            devices=settings.device,
            progress=progress,
        ),
    )
    write_rendered(REPAIR_REPORTERS[format_name](result), reports)
    return result.exit_code()


@app.command("audit")
@command
def audit_command(
    targets: Annotated[
        list[str],
        typer.Argument(
            help="file.py:callable, package.module:callable, or a directory.", metavar="TARGET..."
        ),
    ],
    *,
    model: InputOptions,
    many: ManyTargetOptions,
    report: ReportOptions,
) -> int:
    """Audit the model's modules (and probe its eval-mode behaviour) without exporting."""
    require_validate_extra("exportcheck audit")
    from exportcheck.pipeline.parallel import run_targets

    settings = model_settings(
        report, model, device=model.device or "cpu", jobs=many.jobs, timeout=many.timeout
    )
    chosen = destinations(
        settings.format,
        report.output,
        targets=targets,
        inputs_file=model.inputs,
        config_file=settings.config_file,
    )
    found = run_user_code(
        report.quiet,
        lambda progress: run_targets(
            targets,
            jobs=settings.jobs,
            timeout=settings.timeout,
            shard=many.shard,
            progress=progress,
            command="audit",
            end_descendants=True,
            input_shapes=tuple(model.input_shape or ()),
            inputs_file=model.inputs,
            fail_on=settings.fail_on,
            probes=many.probes,
            devices=settings.device,
        ),
    )
    return finish(found, settings, chosen, report)


@app.command("merge")
@command
def merge_command(
    reports: Annotated[
        list[str],
        typer.Argument(
            help="JSON reports of one run's shards (exportcheck validate --shard K/N -o "
            "json=FILE), from the same exportcheck version.",
            metavar="REPORT...",
        ),
    ],
    report: ReportOptions,
) -> int:
    """Merge shard reports into the whole run's report, with the exit code it would have had."""
    from exportcheck.pipeline.merging import merge_files

    settings = load_settings(report)
    chosen = destinations(
        settings.format, report.output, models=reports, config_file=settings.config_file
    )
    with gc_paused():
        merged = merge_files(reports, fail_on=settings.fail_on)
        return finish(merged, settings, chosen, report)


@app.command("config")
@command
def config_command(
    config: ConfigPath = None,
    format_name: ListingFormat = "text",
) -> int:
    """Print the effective settings and where each came from."""
    from exportcheck.reporters.listings import LISTING_FORMATS, SettingEntry, render_settings
    from exportcheck.settings.config import load_settings as load

    check_choice(format_name, LISTING_FORMATS, "--format")
    settings = load(config)
    entries = [
        SettingEntry(key, value, settings.source(key.replace("-", "_")))
        for key, value in settings.to_dict().items()
    ]
    write_stdout(render_settings(settings.config_file, entries, format_name))
    return 0


def rule_entry(rule: Any) -> Any:
    from exportcheck.reporters.listings import RuleEntry

    return RuleEntry(
        rule.code, rule.slug, rule.severity.label, rule.stage, rule.summary, rule.doc()
    )


@app.command("rules")
@command
def rules_command(format_name: ListingFormat = "text") -> int:
    """List the rule catalogue."""
    from exportcheck.reporters.listings import LISTING_FORMATS, render_rules
    from exportcheck.rules import RULES

    check_choice(format_name, LISTING_FORMATS, "--format")
    write_stdout(render_rules([rule_entry(rule) for rule in RULES], format_name))
    return 0


@app.command("explain")
@command
def explain_command(
    rule: Annotated[str, typer.Argument(help="A rule slug or code.", metavar="RULE")],
) -> int:
    """Print one rule's explanation: what it finds, why it is wrong, how to fix."""
    from exportcheck.reporters.listings import render_explanation
    from exportcheck.rules import get_rule

    try:
        found = get_rule(rule)
    except KeyError as error:
        raise UsageError(str(error.args[0])) from None
    write_stdout(render_explanation(rule_entry(found)))
    return 0


def main() -> None:
    """The console script: the app, with SIGTERM and SIGHUP cleaned up as Ctrl-C is, and a
    stdout that fails (a full disk, a closed pipe) reported in one line.

    It leaves through sys.exit, so exit handlers run and the streams are flushed as usual, with
    the collector frozen first: its last passes at interpreter teardown walk every object the
    run left behind (torch's, the exporters'), 1.2 s of an 11 s `validate` of a transformer
    encoder, 0.17 s with them frozen. Nothing the run needs is left to the collector then.
    """
    # The run imports the user's modules, lazily too (in build(), in forward()): none of them
    # may leave `__pycache__` in the user's folders.
    sys.dont_write_bytecode = True
    install_signal_handlers()
    try:
        app()
        code: object = 0
    except SystemExit as exit_:
        code = exit_.code
    except OSError as error:  # Click's own output (--help) into a full or closed stream
        silence_stdout()
        error_line(f"stdout: cannot write ({error.strerror or type(error).__name__})")
        code = EXIT_INPUT
    try:
        sys.stdout.flush()
    except (OSError, ValueError) as error:
        silence_stdout()
        error_line(f"stdout: cannot write ({getattr(error, 'strerror', None) or error})")
        code = code or EXIT_INPUT
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    main()

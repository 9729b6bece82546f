"""The main job: audit and probe the eval-mode model, export it, inspect each artifact, and prove
numerically that every artifact computes what the eval-mode model computes, on each device."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from exportcheck.auditing.modes import preserved
from exportcheck.auditing.module_audit import audit_findings
from exportcheck.comparison.artifact_checks import (
    ArtifactOutcome,
    artifact_kind,
    compare_inspected_artifact,
    inspect_and_compare_artifact,
    inspect_before_loading,
)
from exportcheck.comparison.reference import (
    ModelRun,
    Progress,
    Tolerances,
    cross_device,
    eval_randomness,
    probe_on_devices,
    quiet_progress,
    reference_findings,
)
from exportcheck.comparison.runtimes import (
    Runtime,
    check_onnx_external_data,
    chosen_runtimes,
    missing_runtimes,
)
from exportcheck.comparison.runtimes.host import IsolatedRuntime
from exportcheck.comparison.runtimes.native_paths import (
    opens_as_text,
    runtime_folder,
    runtime_path,
)
from exportcheck.errors import (
    ForkedChildError,
    InputError,
    InputSpecError,
    ModelRunError,
    first_line,
)
from exportcheck.export.exporters import (
    FORMATS,
    SUFFIXES,
    Exported,
    Exporter,
    ExportFailed,
)
from exportcheck.numerics.devices import resolve_devices
from exportcheck.pipeline.forked_exports import CopyChecks, SplitExports, fork_allowed
from exportcheck.pipeline.overlap import overlapping_checks
from exportcheck.pipeline.scratch import artifact_bytes, memory_folder_for, weight_bytes
from exportcheck.results.comparison import Comparison
from exportcheck.results.findings import Finding
from exportcheck.results.report import Report, Skipped, input_problem
from exportcheck.results.runtimes import RuntimeRun
from exportcheck.rules import rule_descriptors
from exportcheck.targets.python_targets import build_target

__all__ = [
    "Tolerances",
    "audit",
    "check_run_flags",
    "audit_targets",
    "compare",
    "compare_target",
    "validate",
    "validate_targets",
]


# Device files a GPU driver torch.cuda can use leaves on Linux: NVIDIA's, WSL's GPU
# paravirtualisation, and AMD's (ROCm builds of torch answer to "cuda").
GPU_DRIVER_FILES = ("/proc/driver/nvidia/version", "/dev/dxg", "/dev/kfd")


def cuda_driver_missing() -> str | None:
    """Why this machine cannot run CUDA, found without importing torch (seconds), or None where a
    driver is there or cannot be ruled out; torch's own check follows, for a torch without CUDA
    on a GPU machine."""
    if sys.platform == "darwin":
        return "macOS has no CUDA"
    if sys.platform.startswith("linux") and not any(map(os.path.exists, GPU_DRIVER_FILES)):
        return f"no GPU driver is loaded ({', '.join(GPU_DRIVER_FILES)} are all missing)"
    return None


def check_run_flags(
    device: str | Sequence[str] | None,
    inputs_file: str | None,
    runtimes: Sequence[str] | None = None,
) -> None:
    """What a run names that cannot be there, checked before torch is imported: an inputs file
    that does not exist, a runtime named but not installed, a CUDA device on a machine without
    a GPU driver."""
    if inputs_file is not None and not os.path.isfile(inputs_file):
        raise InputSpecError("no such file (--inputs)", subject=inputs_file)
    if runtimes is not None:
        try:
            missing = missing_runtimes(runtimes)
        except KeyError as error:
            raise InputSpecError(str(error.args[0]), subject="--runtimes") from None
        if missing:
            raise InputSpecError(f"asked for, but {'; '.join(missing)}", subject="--runtimes")
    wanted = [device] if isinstance(device, str) or device is None else list(device)
    why = cuda_driver_missing() if "cuda" in wanted else None
    if why is not None:
        raise InputSpecError(f"cuda was asked for, but {why}", subject="--device")


def runtime_choice(
    names: Sequence[str] | None, subject: str
) -> tuple[tuple[Runtime, ...], list[Skipped]]:
    """The installed runtimes among those chosen (None: all), each warming up (a runtime in a
    process of its own starts it now, while the model is audited and exported), and a skipped
    step, with the extra to install, for each that is not installed."""
    try:
        chosen = chosen_runtimes(names)
    except KeyError as error:
        raise InputSpecError(str(error.args[0]), subject="--runtimes") from None
    installed = tuple(r for r in chosen if r.installed())
    for runtime in installed:
        runtime.warm_up()
    skipped = [
        Skipped(subject, f"{r.name} runtime", r.install_hint())
        for r in chosen
        if r not in installed
    ]
    return installed, skipped


def validate(
    model: Any,
    example_inputs: Any,
    formats: Sequence[str] | None = None,
    devices: str | Sequence[str] | None = None,
    *,
    subject: str = "model",
    rtol: float | None = None,
    atol: float | None = None,
    tolerances: Tolerances | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    allow_tf32: bool = False,
    probes: bool = True,
    progress: Progress | None = None,
    fail_on: str = "error",
    runtimes: Sequence[str] | None = None,
    localize: bool = False,
) -> Report:
    """Validates one model; the model comes back with its own modes and buffers. `runtimes`
    chooses among the installed runtimes (None: every one)."""
    from exportcheck.targets.python_targets import as_input_tuple

    inputs = as_input_tuple(example_inputs, subject)
    chosen = tuple(formats) if formats else FORMATS
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown:
        from exportcheck.errors import InputSpecError

        raise InputSpecError(
            f"unknown format(s) {', '.join(unknown)} (choose from {', '.join(FORMATS)})",
            subject="--formats",
        )
    usable, missing = resolve_devices(devices)
    tol = tolerances or Tolerances(rtol=rtol, atol=atol)
    ctx = ModelRun(model, inputs, subject, tol, allow_tf32, progress or quiet_progress)
    findings: list[Finding] = []
    comparisons: list[Comparison] = []
    skipped = [
        Skipped(subject, f"{device} comparisons", why, device=device) for device, why in missing
    ]
    chosen_runtimes_, not_installed = runtime_choice(runtimes, subject)
    skipped += not_installed
    runs: list[RuntimeRun] = []

    try:
        with preserved(model):
            ctx.progress(f"{subject}: audit")
            findings += audit_findings(model, subject)
            model.eval()
            findings += reference_findings(ctx)
            if probes:
                found, missed = probe_on_devices(ctx, usable, tol.probe_tolerance())
                findings += found
                skipped += missed
            comparisons += cross_device(ctx, usable)
            needed = artifact_bytes(model, len(chosen))
            order = sorted(range(len(chosen)), key=lambda i: EXPORT_ORDER.index(chosen[i]))
            stem = _safe_stem(subject)
            with (
                _artifact_folder(out_dir, needed) as (working_folder, final_folder),
                runtime_folder(working_folder) as folder,
                overlapping_checks(ctx.progress) as (checks, relayed),
                SplitExports(
                    Exporter(model, inputs),
                    [(chosen[i], os.path.join(folder, stem + SUFFIXES[chosen[i]])) for i in order],
                    ctx.model_lock,
                    fork_allowed(chosen, checks.threads, weight_bytes(model)),
                    lambda fmt: ctx.progress(f"{subject}: export {fmt}"),
                    CopyChecks(
                        functools.partial(_checked_in_copy_wants, chosen_runtimes_),
                        functools.partial(
                            _checked_in_copy, ctx, usable, chosen_runtimes_, final_folder, localize
                        ),
                        lambda step: ctx.progress(step),
                    ),
                ) as exports,
            ):
                ctx.progress = relayed
                # per format: why its export failed, the static pass's outcome on an artifact
                # it did not clear, the outcome of its check in a forked copy, or the index of
                # the artifact's check in the queue
                slots: dict[int, Skipped | ArtifactOutcome | int] = {}
                for index, exported, checked in exports:
                    position, (fmt, path) = order[index], exports.jobs[index]
                    checks.flush()
                    if isinstance(exported, ExportFailed):
                        reason = _export_failure(str(exported), model)
                        slots[position] = Skipped(subject, f"export {fmt}", reason, fmt)
                        continue
                    if checked is not None:
                        slots[position] = checked
                        continue
                    label = _artifact_label(fmt, path, final_folder)
                    # Here, not in the queue: a runtime in a process of its own then compiles
                    # the artifact while the next format exports and the last check runs.
                    inspected, cleared = inspect_before_loading(
                        ctx,
                        path,
                        fmt,
                        usable,
                        artifact_label=label,
                        runtimes=chosen_runtimes_,
                    )
                    if not cleared:
                        slots[position] = inspected
                        continue
                    slots[position] = len(checks.futures)
                    checks.submit(
                        functools.partial(
                            compare_inspected_artifact,
                            ctx,
                            path,
                            fmt,
                            usable,
                            inspected,
                            dynamic_batch=exported.dynamic_batch,
                            artifact_label=label,
                            runtimes=chosen_runtimes_,
                            localize=localize,
                        )
                    )
                outcomes = checks.results()
                for slot in (slots[i] for i in range(len(chosen))):
                    if isinstance(slot, Skipped):
                        skipped.append(slot)
                        continue
                    outcome = slot if isinstance(slot, ArtifactOutcome) else outcomes[slot]
                    findings += outcome.findings
                    comparisons += outcome.comparisons
                    skipped += outcome.skipped
                    runs += outcome.runs
    except Exception as error:
        raise model_error(
            error, model, subject, _partial(subject, findings, comparisons, skipped, fail_on, runs)
        ) from None
    finally:
        ctx.progress = progress or quiet_progress
        ctx.models.clear()
    return _partial(subject, findings, comparisons, skipped, fail_on, runs)


def _artifact_label(fmt: str, path: str, final_folder: str | None) -> str:
    """Where the report says an artifact is: in the folder it is kept in, or a temporary one."""
    if final_folder is not None:
        return os.path.join(final_folder, os.path.basename(path))
    return f"{fmt}: {os.path.basename(path)} (temporary)"


def _checked_in_copy_wants(runtimes: Sequence[Runtime], fmt: str) -> bool:
    """Whether the forked copy checks a format's artifact itself: one that runs in torch (whose
    backend flags the dynamo exporter turns off in this process), on runtimes that all run
    in-process (a runtime's host process answers only this process)."""
    kind = artifact_kind(fmt)
    return kind != "onnx" and not any(
        isinstance(r, IsolatedRuntime) for r in runtimes if kind in r.kinds
    )


def _checked_in_copy(
    ctx: ModelRun,
    devices: Sequence[str],
    runtimes: Sequence[Runtime],
    final_folder: str | None,
    localize: bool,
    fmt: str,
    path: str,
    exported: Exported,
    progress: Progress,
) -> ArtifactOutcome:
    """An artifact's whole check, in the forked copy that exported it: the copy never re-traces
    the program (the dynamo exporter runs in the parent), so a check that runs torch need not
    wait for torch's backend flags to come back there (EXPORT_ORDER)."""
    ctx.progress = progress
    return inspect_and_compare_artifact(
        ctx,
        path,
        fmt,
        devices,
        dynamic_batch=exported.dynamic_batch,
        artifact_label=_artifact_label(fmt, path, final_folder),
        runtimes=runtimes,
        localize=localize,
    )


def _export_failure(reason: str, model: Any) -> str:
    """The exporter's reason, after the cause it does not name: torch records the file of each
    module's code in the artifact and fails on a path that is not UTF-8, whatever the format
    ("error unpacking string as utf-8", "Unable to cast Python instance of type <class 'str'>")."""
    for module in model.modules():
        code = getattr(sys.modules.get(type(module).__module__), "__file__", None)
        if code and not opens_as_text(code):
            return (
                f"the model's code is at a path that is not UTF-8 ({code}), which torch's "
                f"exporters cannot record: move or rename it ({reason})"
            )
    return reason


# The order the formats export in; the report keeps the order they were asked in. The ONNX
# files come first: their checks run only the ONNX runtimes, so a runtime in a process of its
# own compiles each while the later formats export. torch.export, which the dynamo exporter
# runs too, turns backend flags (mkldnn, nnpack) off process-wide while it traces, so every
# format whose check runs torch on the other thread exports after both. With two cores, a
# forked copy exports every format after the first, and checks those that run torch itself,
# while the dynamo exporter runs here (pipeline.forked_exports).
EXPORT_ORDER = (
    "onnx",
    "onnx-legacy",
    "exported-program",
    "torchscript-trace",
    "torchscript-script",
)


def _partial(
    subject: str,
    findings: list[Finding],
    comparisons: list[Comparison],
    skipped: list[Skipped],
    fail_on: str,
    runs: Sequence[RuntimeRun] = (),
) -> Report:
    return Report(
        subjects=(subject,),
        findings=tuple(findings),
        comparisons=tuple(comparisons),
        skipped=tuple(skipped),
        fail_on=fail_on,
        uncompared=() if comparisons else (subject,),
        rules=rule_descriptors(),
        runtime_runs=tuple(runs),
    )


def model_error(error: Exception, model: Any, subject: str, partial: Report) -> Exception:
    """A ModelRunError naming the module and method when the exception came out of the model's
    own train(), eval() or forward(); anything else is exportcheck's and goes on unchanged."""
    if isinstance(error, ModelRunError):
        error.partial = partial  # type: ignore[attr-defined]
        return error
    culprit = _raising_module(error, model) if model is not None else None
    if culprit is None:
        return error
    wrapped = ModelRunError(f"{culprit} raised {first_line(error)}", subject=subject)
    wrapped.partial = partial  # type: ignore[attr-defined]
    return wrapped


def _raising_module(error: BaseException, model: Any) -> str | None:
    """`Head.forward() of module 'head'` for the innermost frame of the traceback that is a
    train/eval/forward method of a module in the model, defined outside torch."""
    names = {id(module): name for name, module in model.named_modules()}
    culprit = None
    traceback = error.__traceback__
    while traceback is not None:
        frame = traceback.tb_frame
        owner = frame.f_locals.get("self")
        defined_in = frame.f_globals.get("__name__", "")
        if (
            frame.f_code.co_name in ("train", "eval", "forward")
            and id(owner) in names
            and not defined_in.startswith("torch")
        ):
            where = names[id(owner)] or "<root>"
            culprit = f"{type(owner).__name__}.{frame.f_code.co_name}() of module {where!r}"
        traceback = traceback.tb_next
    return culprit


def _safe_stem(subject: str) -> str:
    """A file name per subject: readable, and distinct for same-named files in other folders."""
    import hashlib

    path, _, attribute = subject.rpartition(":") if ":" in subject else (subject, "", "")
    base = os.path.splitext(os.path.basename(path))[0] or "model"
    if attribute and attribute != "build":
        base = f"{base}-{attribute}"
    digest = hashlib.sha1(subject.encode(errors="surrogateescape")).hexdigest()[:8]
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in base)
    return f"{safe}-{digest}"


def planned_artifacts(
    out_dir: str, subjects: Sequence[str], formats: Sequence[str] | None = None
) -> list[str]:
    """The paths `validate` gives its artifacts in `out_dir`, one per subject and format."""
    return [
        os.path.join(out_dir, _safe_stem(subject) + SUFFIXES[fmt])
        for subject in subjects
        for fmt in (formats or FORMATS)
        if fmt in SUFFIXES
    ]


@contextlib.contextmanager
def _artifact_folder(
    out_dir: str | os.PathLike[str] | None, needed_bytes: int
) -> Iterator[tuple[str, str | None]]:
    """(the folder exporters write into, the folder the artifacts end up in or None).

    Exporters write only into a fresh private folder (mkdtemp: created exclusively, mode 0700),
    so no planted symlink at a predictable name is ever written through. With `out_dir`, that
    folder lies inside it, and each artifact is then renamed into place: a rename replaces a
    symlink at the name instead of following it. Without it, the folder is in memory when
    `needed_bytes` fit there (`scratch.memory_folder_for`).
    """
    from exportcheck.errors import OutputError

    if out_dir is None:
        memory = memory_folder_for(needed_bytes)
        with tempfile.TemporaryDirectory(prefix="exportcheck-", dir=memory) as folder:
            yield folder, None
        return
    final = os.fspath(out_dir)
    try:
        os.makedirs(final, exist_ok=True)
        private = tempfile.TemporaryDirectory(prefix=".exportcheck-", dir=final)
    except OSError as error:
        raise OutputError(f"cannot create --out-dir ({error.strerror})", subject=final) from None
    with private as folder:
        yield folder, final
        for name in os.listdir(folder):
            os.replace(os.path.join(folder, name), os.path.join(final, name))


def compare(
    artifact: str | os.PathLike[str],
    model: Any,
    example_inputs: Any,
    devices: str | Sequence[str] | None = None,
    *,
    subject: str | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    tolerances: Tolerances | None = None,
    allow_tf32: bool = False,
    progress: Progress | None = None,
    fail_on: str = "error",
    runtimes: Sequence[str] | None = None,
    localize: bool = False,
) -> Report:
    """Checks a file someone else exported against the eval-mode model."""
    from exportcheck.readers import detect_kind
    from exportcheck.readers.view import ArtifactKind
    from exportcheck.targets.python_targets import as_input_tuple

    path = os.fspath(artifact)
    label = subject or path
    inputs = as_input_tuple(example_inputs, label)
    kind = detect_kind(path)
    if kind is ArtifactKind.ONNX:
        check_onnx_external_data(path)
    usable, missing = resolve_devices(devices)
    tol = tolerances or Tolerances(rtol=rtol, atol=atol)
    ctx = ModelRun(model, inputs, label, tol, allow_tf32, progress or quiet_progress)
    skipped = [
        Skipped(label, f"{device} comparisons", why, device=device) for device, why in missing
    ]
    chosen_runtimes_, not_installed = runtime_choice(runtimes, label)
    skipped += not_installed
    reference_problems: list[Finding] = []
    try:
        with preserved(model):
            model.eval()
            reference_problems = reference_findings(ctx)
            # Found before the artifact runs: a mismatch it explains is then the model's
            # problem, not left to localization to pin on the export's lowering.
            randomness = eval_randomness(ctx)
            with runtime_path(path, kind.value) as openable:
                outcome = inspect_and_compare_artifact(
                    ctx,
                    openable,
                    kind.value,
                    usable,
                    artifact_label=path,
                    runtimes=chosen_runtimes_,
                    localize=localize,
                    model_findings=randomness,
                )
    except Exception as error:
        raise model_error(
            error, model, label, _partial(label, reference_problems, [], skipped, fail_on)
        ) from None
    finally:
        ctx.models.clear()
    return _partial(
        label,
        reference_problems + outcome.findings,
        list(outcome.comparisons),
        skipped + outcome.skipped,
        fail_on,
        outcome.runs,
    )


def _for_each_target(
    specs: Sequence[str],
    input_shapes: Sequence[str],
    inputs_file: str | None,
    fail_on: str,
    progress: Progress | None,
    check: Callable[[Any], Report],
) -> Report:
    """Builds each target and checks it; a target that cannot be built or run becomes a report
    error and the others go on."""
    from exportcheck.results.report import merge_reports
    from exportcheck.targets.python_targets import expand_targets

    reports: list[Report] = []
    for spec in expand_targets(specs):
        (progress or quiet_progress)(f"{spec}: build")
        reports.append(_one_target(spec, input_shapes, inputs_file, fail_on, check))
    return replace(merge_reports(reports, fail_on=fail_on), rules=rule_descriptors())


def _one_target(
    spec: str,
    input_shapes: Sequence[str],
    inputs_file: str | None,
    fail_on: str,
    check: Callable[[Any], Report],
) -> Report:
    """One target's report; its input problems (and whatever was established before them)
    become the report, and the working directory it may have changed is put back."""
    cwd = os.getcwd()
    owner = os.getpid()
    model = None
    try:
        target = build_target(spec, input_shapes, inputs_file)
        model = target.model
        return check(target)
    except InputError as error:
        partial = getattr(error, "partial", None) or Report(subjects=(spec,), fail_on=fail_on)
        return replace(partial, errors=(input_problem(spec, error),))
    except Exception as error:
        wrapped = model_error(error, model, spec, Report(subjects=(spec,), fail_on=fail_on))
        if wrapped is error:
            raise
        return replace(wrapped.partial, errors=(input_problem(spec, wrapped),))  # type: ignore[attr-defined]
    except SystemExit as exit_:
        error = ModelRunError(f"the model's code called sys.exit({exit_.code!r})", subject=spec)
        return Report(subjects=(spec,), errors=(input_problem(spec, error),), fail_on=fail_on)
    except MemoryError:
        error = ModelRunError(
            "out of memory: the model is too large for this machine", subject=spec
        )
        return Report(subjects=(spec,), errors=(input_problem(spec, error),), fail_on=fail_on)
    finally:
        if os.getpid() != owner:
            raise ForkedChildError(spec)
        with contextlib.suppress(OSError):
            os.chdir(cwd)


def validate_targets(
    specs: Sequence[str],
    *,
    input_shapes: Sequence[str] = (),
    inputs_file: str | None = None,
    fail_on: str = "error",
    progress: Progress | None = None,
    **options: Any,
) -> Report:
    """Validates every target (`file.py:callable`, `package.module:callable`, directories)."""
    return _for_each_target(
        specs,
        input_shapes,
        inputs_file,
        fail_on,
        progress,
        lambda target: validate(
            target.model,
            target.inputs,
            subject=target.label,
            progress=progress,
            fail_on=fail_on,
            **options,
        ),
    )


def audit(
    model: Any,
    example_inputs: Any = None,
    *,
    subject: str = "model",
    probes: bool = True,
    devices: str | Sequence[str] | None = "cpu",
    fail_on: str = "error",
) -> Report:
    """The module audit and, given example inputs, the behavioural probes; nothing is
    exported and the model comes back with its own modes."""
    findings = audit_findings(model, subject)
    skipped: list[Skipped] = []
    if probes and example_inputs is not None:
        from exportcheck.targets.python_targets import as_input_tuple

        inputs = as_input_tuple(example_inputs, subject)
        usable, missing = resolve_devices(devices)
        skipped += [Skipped(subject, f"{d} probes", why, device=d) for d, why in missing]
        ctx = ModelRun(model, inputs, subject, Tolerances(), False, quiet_progress)
        with preserved(model):
            model.eval()
            ctx.reference("cpu", inputs)
            found, missed = probe_on_devices(ctx, usable, None)
        findings += found
        skipped += missed
        ctx.models.clear()
    return Report(
        subjects=(subject,),
        findings=tuple(findings),
        skipped=tuple(skipped),
        fail_on=fail_on,
        rules=rule_descriptors(),
    )


def audit_targets(
    specs: Sequence[str],
    *,
    input_shapes: Sequence[str] = (),
    inputs_file: str | None = None,
    fail_on: str = "error",
    probes: bool = True,
    devices: str | Sequence[str] | None = "cpu",
    progress: Progress | None = None,
) -> Report:
    """The audit (and probes) alone for every target, without exporting."""
    return _for_each_target(
        specs,
        input_shapes,
        inputs_file,
        fail_on,
        progress,
        lambda target: audit(
            target.model,
            target.inputs,
            subject=target.label,
            probes=probes,
            devices=devices,
            fail_on=fail_on,
        ),
    )


def compare_target(
    artifact: str,
    spec: str,
    *,
    input_shapes: Sequence[str] = (),
    inputs_file: str | None = None,
    **options: Any,
) -> Report:
    from exportcheck.targets.python_targets import build_target

    target = build_target(spec, input_shapes, inputs_file)
    return compare(
        artifact, target.model, target.inputs, subject=f"{artifact} vs {spec}", **options
    )

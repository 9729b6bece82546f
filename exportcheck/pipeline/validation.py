"""The main job: audit and probe the eval-mode model, export it, inspect each artifact, and prove
numerically that every artifact computes what the eval-mode model computes, on each device."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from exportcheck.auditing.modes import preserved
from exportcheck.auditing.module_audit import audit_findings
from exportcheck.comparison.artifact_checks import inspect_and_compare_artifact
from exportcheck.comparison.devices import resolve_devices
from exportcheck.comparison.reference import (
    ModelRun,
    Progress,
    Tolerances,
    cross_device,
    probe_on_devices,
    quiet_progress,
    reference_findings,
)
from exportcheck.comparison.runtimes import check_onnx_external_data
from exportcheck.errors import InputError, ModelRunError
from exportcheck.export.exporters import (
    FORMATS,
    SUFFIXES,
    Exporter,
    ExportFailed,
    onnx_batch_is_dynamic,
)
from exportcheck.results.comparison import Comparison
from exportcheck.results.findings import Finding
from exportcheck.results.report import Report, Skipped, input_problem
from exportcheck.rules import rule_descriptors

__all__ = [
    "Tolerances",
    "audit",
    "audit_targets",
    "compare",
    "compare_target",
    "validate",
    "validate_targets",
]


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
) -> Report:
    """Validates one model; the model comes back with its own modes and buffers."""
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
        with _artifact_folder(out_dir) as folder:
            exporter = Exporter(model, inputs)
            stem = _safe_stem(subject)
            for fmt in chosen:
                path = os.path.join(folder, stem + SUFFIXES[fmt])
                ctx.progress(f"{subject}: export {fmt}")
                try:
                    exported = exporter.export(fmt, path)
                except ExportFailed as why:
                    skipped.append(Skipped(subject, f"export {fmt}", str(why), fmt))
                    continue
                label = (
                    path if out_dir is not None else f"{fmt}: {os.path.basename(path)} (temporary)"
                )
                outcome = inspect_and_compare_artifact(
                    ctx,
                    exported.path,
                    fmt,
                    usable,
                    dynamic_batch=exported.dynamic_batch,
                    artifact_label=label,
                )
                findings += outcome.findings
                comparisons += outcome.comparisons
                skipped += outcome.skipped
    ctx.models.clear()
    return Report(
        subjects=(subject,),
        findings=tuple(findings),
        comparisons=tuple(comparisons),
        skipped=tuple(skipped),
        fail_on=fail_on,
        rules=rule_descriptors(),
    )


def _safe_stem(subject: str) -> str:
    """A file name per subject: readable, and distinct for same-named files in other folders."""
    import hashlib

    path, _, attribute = subject.rpartition(":") if ":" in subject else (subject, "", "")
    base = os.path.splitext(os.path.basename(path))[0] or "model"
    if attribute and attribute != "build":
        base = f"{base}-{attribute}"
    digest = hashlib.sha1(subject.encode()).hexdigest()[:8]
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in base)
    return f"{safe}-{digest}"


@contextlib.contextmanager
def _artifact_folder(out_dir: str | os.PathLike[str] | None) -> Iterator[str]:
    if out_dir is None:
        with tempfile.TemporaryDirectory(prefix="exportcheck-") as folder:
            yield folder
        return
    folder = os.fspath(out_dir)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        from exportcheck.errors import OutputError

        raise OutputError(f"cannot create --out-dir ({error.strerror})", subject=folder) from None
    yield folder


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
    with preserved(model):
        model.eval()
        reference_problems = reference_findings(ctx)
        outcome = inspect_and_compare_artifact(
            ctx,
            path,
            kind.value,
            usable,
            dynamic_batch=kind is ArtifactKind.ONNX and onnx_batch_is_dynamic(path),
            artifact_label=path,
        )
    ctx.models.clear()
    return Report(
        subjects=(label,),
        findings=tuple(reference_problems + outcome.findings),
        comparisons=tuple(outcome.comparisons),
        skipped=tuple(skipped + outcome.skipped),
        fail_on=fail_on,
        rules=rule_descriptors(),
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
    from exportcheck.targets.python_targets import build_target, expand_targets

    reports: list[Report] = []
    for spec in expand_targets(specs):
        try:
            (progress or quiet_progress)(f"{spec}: build")
            reports.append(check(build_target(spec, input_shapes, inputs_file)))
        except InputError as error:
            problem = input_problem(spec, error)
            reports.append(
                Report(
                    subjects=(spec,), errors=(problem,), fail_on=fail_on, rules=rule_descriptors()
                )
            )
        except MemoryError:
            problem = input_problem(
                spec,
                ModelRunError(
                    "out of memory: the model is too large for this machine", subject=spec
                ),
            )
            reports.append(
                Report(
                    subjects=(spec,), errors=(problem,), fail_on=fail_on, rules=rule_descriptors()
                )
            )
    return merge_reports(reports, fail_on=fail_on)


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

"""The main job: audit and probe the eval-mode model, export it, inspect each artifact, and prove
numerically that every artifact computes what the eval-mode model computes, on each device."""

from __future__ import annotations

import contextlib
import copy
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from exportcheck.comparison import Comparison, OutputMetrics, Tolerance
from exportcheck.devices import resolve_devices, tf32
from exportcheck.errors import InputError, ModelRunError
from exportcheck.exporters import FORMATS, SUFFIXES, Exporter, ExportFailed, onnx_batch_is_dynamic
from exportcheck.findings import Finding, Location
from exportcheck.inspection import inspect_artifact
from exportcheck.modes import batch_statistics_mode, preserved
from exportcheck.module_audit import audit_findings
from exportcheck.probes import batch_size, companions, run_probes
from exportcheck.report import Report, Skipped, input_problem
from exportcheck.rules import NonfiniteOutput, OutputMismatch, RuntimeNondeterminism
from exportcheck.runners import (
    OPTIMIZATION_LEVELS,
    Runner,
    RunnerUnavailable,
    check_onnx_external_data,
    load_torch_artifact,
    onnx_runner,
    pytorch_runner,
    torch_runner,
)
from exportcheck.tensors import default_tolerance, measure

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Tolerances:
    """`--rtol/--atol` overrides, per output name where given; dtype defaults otherwise."""

    rtol: float | None = None
    atol: float | None = None
    per_output: Mapping[str, Tolerance] = field(default_factory=dict)

    def for_output(self, name: str, expected: np.ndarray) -> Tolerance:
        if name in self.per_output:
            return self.per_output[name]
        base = default_tolerance(expected.dtype)
        if self.rtol is None and self.atol is None:
            return base
        return Tolerance(
            rtol=base.rtol if self.rtol is None else self.rtol,
            atol=base.atol if self.atol is None else self.atol,
            source="command line",
        )

    def probe_tolerance(self) -> Tolerance | None:
        if self.rtol is None and self.atol is None:
            return None
        return Tolerance(rtol=self.rtol or 0.0, atol=self.atol or 0.0, source="command line")


@dataclass
class _Context:
    """One model's run: the eval-mode copies per device and every reference, computed once."""

    model: Any
    inputs: tuple[Any, ...]
    subject: str
    tolerances: Tolerances
    allow_tf32: bool
    progress: Progress
    models: dict[str, Any] = field(default_factory=dict)
    references: dict[tuple[str, str, int], list[np.ndarray]] = field(default_factory=dict)

    def model_on(self, device: str) -> Any:
        if device not in self.models:
            self.models[device] = (
                self.model if device == "cpu" else copy.deepcopy(self.model).to(device)
            )
        return self.models[device]

    def reference(
        self, device: str, inputs: tuple[Any, ...], mode: str = "eval"
    ) -> list[np.ndarray]:
        key = (device, mode, int(inputs[0].shape[0]) if inputs and inputs[0].dim() else 0)
        if key not in self.references:
            model = self.model_on(device)
            with tf32(self.allow_tf32) if device == "cuda" else contextlib.nullcontext():
                try:
                    if mode == "eval":
                        self.references[key] = pytorch_runner(model, device).run(inputs)
                    else:
                        with batch_statistics_mode(model):
                            self.references[key] = pytorch_runner(model, device).run(inputs)
                except Exception as error:
                    raise ModelRunError(
                        f"the model's forward raised on the example inputs ({device}): "
                        f"{_one_line(error)}",
                        subject=self.subject,
                    ) from None
        return self.references[key]


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _quiet_progress(_: str) -> None:
    return None


def second_batch(inputs: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The example inputs grown by one sample, to check a dynamic batch dimension."""
    import torch

    if batch_size(inputs) is None:
        return None
    extra = companions(inputs, 1, seed=7)
    return tuple(torch.cat([x, e]) for x, e in zip(inputs, extra))


def _compare_outputs(
    ctx: _Context,
    runner: Runner,
    actual: list[np.ndarray],
    expected: list[np.ndarray],
    *,
    artifact: str | None,
    artifact_format: str,
    batch: int | None,
    run: str = "compare",
    reference: str = "pytorch-eval",
) -> list[Comparison]:
    comparisons = []
    names = runner.output_names or [f"output_{i}" for i in range(len(expected))]
    if len(actual) != len(expected):
        metrics = OutputMetrics(
            shape=(len(actual),),
            expected_shape=(len(expected),),
            dtype=None,
            expected_dtype=None,
            max_abs=None,
            max_rel=None,
            mismatched=1,
            total=1,
        )
        return [
            Comparison(
                ctx.subject,
                artifact,
                artifact_format,
                runner.runtime,
                runner.device,
                "(number of outputs)",
                metrics,
                Tolerance(0.0, 0.0, "exact"),
                runner.provider,
                runner.optimization,
                reference,
                batch,
                run,
            )
        ]
    for index, (a, e) in enumerate(zip(actual, expected)):
        name = names[index] if index < len(names) else f"output_{index}"
        tolerance = ctx.tolerances.for_output(name, e)
        comparisons.append(
            Comparison(
                ctx.subject,
                artifact,
                artifact_format,
                runner.runtime,
                runner.device,
                name,
                measure(a, e, tolerance),
                tolerance,
                runner.provider,
                runner.optimization,
                reference,
                batch,
                run,
            )
        )
    return comparisons


@dataclass
class _ArtifactOutcome:
    comparisons: list[Comparison] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def _finding(
    rule: Any, message: str, subject: str, artifact: str | None, scope: str, node: str | None = None
) -> Finding:
    return Finding(
        rule.slug,
        rule.code,
        rule.severity,
        message,
        subject,
        Location(artifact=artifact, scope=scope, node=node, op_type="outputs"),
    )


def check_runner(
    ctx: _Context,
    runner: Runner,
    *,
    artifact: str | None,
    artifact_format: str,
    dynamic_batch: bool,
) -> _ArtifactOutcome:
    """Runs one artifact configuration twice on the example inputs (and once on a second batch
    size when the batch is dynamic) and compares with the eval-mode reference on its device."""
    outcome = _ArtifactOutcome()
    label = f"{artifact_format} on {runner.runtime}/" + "/".join(
        p
        for p in (
            runner.provider and runner.provider.replace("ExecutionProvider", ""),
            runner.device,
            runner.optimization,
        )
        if p
    )
    size = batch_size(ctx.inputs)
    try:
        first = runner.run(ctx.inputs)
        second = runner.run(ctx.inputs)
    except Exception as error:
        if runner.device != "cpu" and runner.runtime == "torch":
            # Tracing and torch.export bake the export device into constants (LSTM initial
            # states, views): an artifact exported on the CPU is not expected to run there.
            outcome.skipped.append(
                Skipped(
                    ctx.subject,
                    f"compare on {runner.device}",
                    f"{label}: the artifact, exported on cpu, does not run on "
                    f"{runner.device}: {_one_line(error)}",
                    artifact_format,
                    runner.device,
                )
            )
            return outcome
        outcome.findings.append(
            _finding(
                OutputMismatch,
                f"{label} fails on the example inputs: {_one_line(error)}",
                ctx.subject,
                artifact,
                label,
            )
        )
        return outcome
    expected = ctx.reference(runner.device, ctx.inputs)
    compared = _compare_outputs(
        ctx, runner, first, expected, artifact=artifact, artifact_format=artifact_format, batch=size
    )
    repeat = _compare_outputs(
        ctx,
        runner,
        second,
        first,
        artifact=artifact,
        artifact_format=artifact_format,
        batch=size,
        run="repeat",
        reference="same artifact, first run",
    )
    outcome.comparisons += compared + repeat
    unstable = [c for c in repeat if not c.passed]
    if unstable:
        worst = max((c.metrics.max_abs or 0.0) for c in unstable)
        outcome.findings.append(
            _finding(
                RuntimeNondeterminism,
                f"{label}: two runs of the same input differ by up to {worst:.3g} in "
                f"{', '.join(c.output for c in unstable)}",
                ctx.subject,
                artifact,
                label,
            )
        )
    for c in compared:
        if c.metrics.nonfinite > c.metrics.expected_nonfinite:
            outcome.findings.append(
                _finding(
                    NonfiniteOutput,
                    f"{label}: output {c.output} has {c.metrics.nonfinite} "
                    "NaN/Inf value(s) the reference does not have",
                    ctx.subject,
                    artifact,
                    label,
                    c.output,
                )
            )
    failing = [c for c in compared if not c.passed]
    if dynamic_batch:
        alt = second_batch(ctx.inputs)
        if alt is not None:
            try:
                alt_expected = ctx.reference(runner.device, alt)
                alt_actual = runner.run(alt)
            except ModelRunError as error:
                outcome.skipped.append(
                    Skipped(
                        ctx.subject,
                        "second batch size",
                        error.message,
                        artifact_format,
                        runner.device,
                    )
                )
            except Exception as error:
                outcome.findings.append(
                    _finding(
                        OutputMismatch,
                        f"{label} declares a dynamic batch but fails at batch "
                        f"{alt[0].shape[0]}: {_one_line(error)}",
                        ctx.subject,
                        artifact,
                        label,
                    )
                )
            else:
                extra = _compare_outputs(
                    ctx,
                    runner,
                    alt_actual,
                    alt_expected,
                    artifact=artifact,
                    artifact_format=artifact_format,
                    batch=int(alt[0].shape[0]),
                )
                outcome.comparisons += extra
                failing += [c for c in extra if not c.passed]
    if failing:
        worst = max(
            (c.metrics.max_abs if c.metrics.max_abs is not None else float("inf")) for c in failing
        )
        outputs = ", ".join(sorted({f"{c.output}@batch{c.batch_size}" for c in failing}))
        message = f"{label} differs from the eval-mode model in {outputs} (max abs {worst:.3g})"
        message += attribution(ctx, runner, first, unstable=bool(unstable))
        outcome.findings.append(_finding(OutputMismatch, message, ctx.subject, artifact, label))
    return outcome


def attribution(ctx: _Context, runner: Runner, actual: list[np.ndarray], *, unstable: bool) -> str:
    """Why an artifact mismatches, where a second reference can tell."""
    if unstable:
        return "; its outputs change from run to run: a training-mode Dropout or random op runs"
    try:
        train_like = ctx.reference(runner.device, ctx.inputs, mode="batch-statistics")
    except InputError:
        return ""
    if len(train_like) == len(actual) and all(
        a.shape == e.shape and measure(a, e, ctx.tolerances.for_output("", e)).mismatched == 0
        for a, e in zip(actual, train_like)
    ):
        return (
            "; it matches the model in training mode with Dropout off instead: exported in "
            "training mode (BatchNorm on batch statistics, or a layer's training branch)"
        )
    return ""


def runners_for(
    path: str, kind: str, devices: Sequence[str], loaded: Any = None
) -> Iterator[tuple[Runner | None, str, str | None]]:
    """(runner, label, reason-if-unavailable) for every configuration an artifact runs in."""
    for device in devices:
        if kind == "onnx":
            for level in OPTIMIZATION_LEVELS:
                label = f"onnxruntime {device} {level}"
                try:
                    yield onnx_runner(path, device, level), label, None
                except RunnerUnavailable as why:
                    yield None, label, str(why)
        else:
            label = f"torch {device}"
            try:
                yield torch_runner(path, kind, device, loaded), label, None
            except RunnerUnavailable as why:
                yield None, label, str(why)


def _artifact_kind(fmt: str) -> str:
    return (
        "onnx"
        if fmt.startswith("onnx")
        else ("torchscript" if fmt.startswith("torchscript") else "exported-program")
    )


def check_artifact(
    ctx: _Context,
    path: str,
    fmt: str,
    devices: Sequence[str],
    *,
    dynamic_batch: bool,
    artifact_label: str | None,
) -> _ArtifactOutcome:
    """Static rules, then every runtime configuration, for one artifact file."""
    outcome = _ArtifactOutcome()
    ctx.progress(f"{ctx.subject}: inspect {fmt}")
    kind = _artifact_kind(fmt)
    loaded = load_torch_artifact(path, kind) if kind != "onnx" else None
    for finding in inspect_artifact(path, subject=ctx.subject, loaded=loaded):
        outcome.findings.append(_relabel(finding, artifact_label))
    for runner, label, reason in runners_for(path, kind, devices, loaded):
        if runner is None:
            outcome.skipped.append(
                Skipped(
                    ctx.subject, f"compare {label}", reason or "unavailable", fmt, label.split()[1]
                )
            )
            continue
        ctx.progress(f"{ctx.subject}: compare {fmt} on {label}")
        with tf32(ctx.allow_tf32) if runner.device == "cuda" else contextlib.nullcontext():
            part = check_runner(
                ctx,
                runner,
                artifact=artifact_label,
                artifact_format=fmt,
                dynamic_batch=dynamic_batch,
            )
        outcome.comparisons += part.comparisons
        outcome.findings += part.findings
        outcome.skipped += part.skipped
        del runner
    return _with_causes(outcome)


def _with_causes(outcome: _ArtifactOutcome) -> _ArtifactOutcome:
    """Numerical findings name the graph findings of the same artifact that explain them, and
    take the module of the likeliest one (randomness for nondeterminism)."""
    from dataclasses import replace

    numeric = {OutputMismatch.slug, RuntimeNondeterminism.slug}
    random_rules = ("training-dropout", "random-op")
    causes = [
        f
        for f in outcome.findings
        if f.rule not in numeric and f.severity >= OutputMismatch.severity and f.location.module
    ]
    if not causes:
        return outcome
    described = ", ".join(dict.fromkeys(f"{f.rule} at {f.location.module}" for f in causes))

    def module_for(rule: str) -> str | None:
        ranked = sorted(
            causes,
            key=lambda f: (
                0 if (rule == RuntimeNondeterminism.slug) == (f.rule in random_rules) else 1
            ),
        )
        return ranked[0].location.module

    outcome.findings = [
        replace(
            f,
            message=f"{f.message} (see {described})",
            location=replace(f.location, module=module_for(f.rule)),
        )
        if f.rule in numeric
        else f
        for f in outcome.findings
    ]
    return outcome
    modules = list(dict.fromkeys(f.location.module for f in causes))
    rules = ", ".join(dict.fromkeys(f"{f.rule} at {f.location.module}" for f in causes))
    outcome.findings = [
        replace(
            f,
            message=f"{f.message} (see {rules})",
            location=replace(f.location, module=", ".join(modules)),
        )
        if f.rule in numeric
        else f
        for f in outcome.findings
    ]
    return outcome


def _relabel(finding: Finding, artifact: str | None) -> Finding:
    from dataclasses import replace

    return replace(finding, location=replace(finding.location, artifact=artifact))


def probe_on_devices(
    ctx: _Context, devices: Sequence[str], tolerance: Tolerance | None
) -> tuple[list[Finding], list[Skipped]]:
    """Both behavioural probes on each device, on the eval-mode copies the context holds."""
    findings: list[Finding] = []
    skipped: list[Skipped] = []
    for device in devices:
        ctx.progress(f"{ctx.subject}: probes on {device}")
        device_inputs = tuple(x.to(device) for x in ctx.inputs)
        with tf32(ctx.allow_tf32) if device == "cuda" else contextlib.nullcontext():
            outcome = run_probes(
                ctx.model_on(device), device_inputs, ctx.subject, device, tolerance
            )
        findings += outcome.findings
        skipped += outcome.skipped
    return findings, skipped


def reference_findings(ctx: _Context, device: str = "cpu") -> list[Finding]:
    """NaN/Inf in the eval-mode reference itself: nothing downstream can be proven for them."""
    findings = []
    for index, value in enumerate(ctx.reference(device, ctx.inputs)):
        if value.dtype.kind in "fc":
            bad = int(value.size - np.count_nonzero(np.isfinite(value)))
            if bad:
                findings.append(
                    _finding(
                        NonfiniteOutput,
                        f"the eval-mode model's output_{index} has {bad} of "
                        f"{value.size} values NaN/Inf on the example inputs ({device})",
                        ctx.subject,
                        None,
                        f"pytorch eval ({device})",
                        f"output_{index}",
                    )
                )
    return findings


def _cross_device(ctx: _Context, devices: Sequence[str]) -> list[Comparison]:
    """The eval-mode model on CUDA against itself on CPU (TF32 shows here when allowed)."""
    if "cuda" not in devices or "cpu" not in devices:
        return []
    cpu = ctx.reference("cpu", ctx.inputs)
    cuda = ctx.reference("cuda", ctx.inputs)
    runner = pytorch_runner(ctx.model_on("cuda"), "cuda")
    tf = "tf32 allowed" if ctx.allow_tf32 else "tf32 off"
    return _compare_outputs(
        ctx,
        runner,
        cuda,
        cpu,
        artifact=None,
        artifact_format=f"pytorch ({tf})",
        batch=batch_size(ctx.inputs),
        reference="pytorch-eval cpu",
    )


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
    from exportcheck.targets import as_input_tuple

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
    ctx = _Context(model, inputs, subject, tol, allow_tf32, progress or _quiet_progress)
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
        comparisons += _cross_device(ctx, usable)
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
                outcome = check_artifact(
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
    from exportcheck.graphview import ArtifactKind
    from exportcheck.readers import detect_kind
    from exportcheck.targets import as_input_tuple

    path = os.fspath(artifact)
    label = subject or path
    inputs = as_input_tuple(example_inputs, label)
    kind = detect_kind(path)
    if kind is ArtifactKind.ONNX:
        check_onnx_external_data(path)
    usable, missing = resolve_devices(devices)
    tol = tolerances or Tolerances(rtol=rtol, atol=atol)
    ctx = _Context(model, inputs, label, tol, allow_tf32, progress or _quiet_progress)
    skipped = [
        Skipped(label, f"{device} comparisons", why, device=device) for device, why in missing
    ]
    with preserved(model):
        model.eval()
        reference_problems = reference_findings(ctx)
        outcome = check_artifact(
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
    from exportcheck.report import merge_reports
    from exportcheck.targets import build_target, expand_targets

    reports: list[Report] = []
    for spec in expand_targets(specs):
        try:
            (progress or _quiet_progress)(f"{spec}: build")
            reports.append(check(build_target(spec, input_shapes, inputs_file)))
        except InputError as error:
            problem = input_problem(spec, error)
            reports.append(Report(subjects=(spec,), errors=(problem,), fail_on=fail_on))
        except MemoryError:
            problem = input_problem(
                spec,
                ModelRunError(
                    "out of memory: the model is too large for this machine", subject=spec
                ),
            )
            reports.append(Report(subjects=(spec,), errors=(problem,), fail_on=fail_on))
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


def audit_model(
    model: Any,
    inputs: tuple[Any, ...],
    *,
    subject: str = "model",
    probes: bool = True,
    devices: str | Sequence[str] | None = "cpu",
    fail_on: str = "error",
) -> Report:
    """The module audit and, with inputs, the behavioural probes; nothing is exported."""
    findings = audit_findings(model, subject)
    skipped: list[Skipped] = []
    if probes:
        usable, missing = resolve_devices(devices)
        skipped += [Skipped(subject, f"{d} probes", why, device=d) for d, why in missing]
        ctx = _Context(model, inputs, subject, Tolerances(), False, _quiet_progress)
        with preserved(model):
            model.eval()
            ctx.reference("cpu", inputs)
            found, missed = probe_on_devices(ctx, usable, None)
        findings += found
        skipped += missed
        ctx.models.clear()
    return Report(
        subjects=(subject,), findings=tuple(findings), skipped=tuple(skipped), fail_on=fail_on
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
        lambda target: audit_model(
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
    from exportcheck.targets import build_target

    target = build_target(spec, input_shapes, inputs_file)
    return compare(
        artifact, target.model, target.inputs, subject=f"{artifact} vs {spec}", **options
    )

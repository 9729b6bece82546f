"""Checks one artifact: the graph rules, then every configuration of every chosen runtime (ONNX
Runtime per provider and optimization level, OpenVINO, tract, torch per device) against the
eval-mode reference, run twice, at a second batch size and at another size of each dynamic
dimension; numerical findings take the module of the cause that explains them."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from exportcheck.auditing.probes import batch_size, companions
from exportcheck.comparison.loaders import load_torch_artifact
from exportcheck.comparison.reference import ModelRun, compare_outputs, measured_finding
from exportcheck.comparison.refusals import located_refusals
from exportcheck.comparison.runtimes import (
    RUNTIMES,
    Runner,
    RunnerUnavailable,
    Runtime,
    RuntimeCrashed,
    RuntimeRefused,
    pytorch_runner,
)
from exportcheck.comparison.shapes import (
    NOTHING_DECLARED,
    DeclaredShapes,
    DimensionVariant,
    onnx_shapes,
    program_shapes,
    variants,
)
from exportcheck.errors import InputError, ModelRunError, first_line
from exportcheck.graph_checks import inspect_artifact
from exportcheck.localization.findings import (
    localization_findings,
    localize_artifact,
    needs_localization,
)
from exportcheck.numerics.devices import tf32
from exportcheck.numerics.metrics import measure
from exportcheck.results.comparison import Comparison, relative_figure, relative_text
from exportcheck.results.findings import Finding
from exportcheck.results.problems import CONSEQUENCE_STAGE, explaining_cause
from exportcheck.results.report import Skipped
from exportcheck.results.runtimes import CRASHED, RAN, REFUSED, SKIPPED, RuntimeRun
from exportcheck.rules import (
    NonfiniteOutput,
    OutputMismatch,
    RuntimeBatchStatistics,
    RuntimeNondeterminism,
    RuntimeRefusal,
    SpecialisedDimension,
    UnsafeArchiveContent,
)


def second_batch(inputs: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The example inputs grown by one sample, to check a dynamic batch dimension."""
    import torch

    if batch_size(inputs) is None:
        return None
    extra = companions(inputs, 1, seed=7)
    return tuple(torch.cat([x, e]) for x, e in zip(inputs, extra))


@dataclass
class ArtifactOutcome:
    comparisons: list[Comparison] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    runs: list[RuntimeRun] = field(default_factory=list)


def runner_configuration(runner: Runner) -> str:
    """`onnxruntime/CPU/cpu/disable_all`: the runtime configuration a measurement ran in."""
    parts = (
        runner.runtime,
        runner.provider and runner.provider.replace("ExecutionProvider", ""),
        runner.device,
        runner.optimization,
    )
    return "/".join(p for p in parts if p)


def check_runner(
    ctx: ModelRun,
    runner: Runner,
    *,
    artifact: str | None,
    artifact_format: str,
    dynamic_batch: bool,
    dimension_variants: Sequence[DimensionVariant] = (),
) -> ArtifactOutcome:
    """Runs one artifact configuration twice on the example inputs (once more on a second batch
    size when the batch is dynamic, and once per other dynamic dimension) and compares with the
    eval-mode reference on its device."""
    outcome = ArtifactOutcome()
    run = RuntimeRun(
        ctx.subject, artifact, artifact_format, runner.runtime, runner_configuration(runner), RAN
    )
    label = run.runner_label
    size = batch_size(ctx.inputs)
    try:
        first = runner.run(ctx.inputs)
        second = runner.run(ctx.inputs)
    except Exception as error:
        outcome.runs.append(
            _record_run_failure(outcome, ctx, runner, error, artifact, artifact_format, label, run)
        )
        return outcome
    expected = ctx.reference(runner.device, ctx.inputs)
    compared = compare_outputs(
        ctx, runner, first, expected, artifact=artifact, artifact_format=artifact_format, batch=size
    )
    repeat = compare_outputs(
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
        outcome.findings.append(
            measured_finding(
                RuntimeNondeterminism,
                f"{label}: two runs of the same input differ by up to {_largest(unstable)} in "
                f"{', '.join(c.output for c in unstable)}",
                ctx.subject,
                artifact,
                label,
            )
        )
    outcome.findings += _nonfinite_findings(ctx, compared, artifact, label)
    failing = [c for c in compared if not c.passed]
    sizes: list[str] = []
    if dynamic_batch:
        failing += _check_second_batch(
            outcome, ctx, runner, artifact, artifact_format, label, first, bool(unstable)
        )
        if size is not None:
            sizes.append(f"batch={size + 1}")
    example_matches = not failing and not unstable
    for variant in dimension_variants:
        sizes.append(variant.label)
        failing += _check_dimension(
            outcome, ctx, runner, variant, artifact, artifact_format, label, example_matches
        )
    outcome.runs.append(replace(run, sizes=tuple(sizes)))
    if failing:
        outputs = ", ".join(sorted({_where(c) for c in failing}))
        message = (
            f"{label} differs from the eval-mode model in {outputs} (max abs {_largest(failing)})"
        )
        message += attribution(ctx, runner, first, unstable=bool(unstable))
        outcome.findings.append(
            measured_finding(OutputMismatch, message, ctx.subject, artifact, label)
        )
    return outcome


def _largest(comparisons: Sequence[Comparison]) -> str:
    """`352, relative 1.2e-06 to the magnitude 3e+08`: the largest absolute difference among
    the comparisons, with its figure relative to the magnitude of its reference output."""
    worst = max(
        comparisons,
        key=lambda c: c.metrics.max_abs if c.metrics.max_abs is not None else float("inf"),
    )
    difference = worst.metrics.max_abs if worst.metrics.max_abs is not None else float("inf")
    figure = relative_figure(difference, worst.metrics.magnitude or 0.0)
    return f"{difference:.3g}, {figure}" if figure else f"{difference:.3g}"


def _where(comparison: Comparison) -> str:
    """`logits@batch4`, or `logits@seq=11` for a dimension's other size."""
    if comparison.run not in ("compare", "repeat"):
        return f"{comparison.output}@{comparison.run}"
    return f"{comparison.output}@batch{comparison.batch_size}"


def _record_run_failure(
    outcome: ArtifactOutcome,
    ctx: ModelRun,
    runner: Runner,
    error: Exception,
    artifact: str | None,
    artifact_format: str,
    label: str,
    run: RuntimeRun,
) -> RuntimeRun:
    """A run of the example inputs that raised: a runtime's refusal, a torch artifact that
    does not run on a device it was not exported on (skipped), or a failure of the artifact."""
    if isinstance(error, RuntimeRefused):
        title = next((r.title for r in RUNTIMES if r.name == runner.runtime), runner.runtime)
        crashed = isinstance(error, RuntimeCrashed)
        outcome.findings.append(
            measured_finding(
                RuntimeRefusal,
                _refusal_message(title, label, str(error), crashed=crashed),
                ctx.subject,
                artifact,
                label,
            )
        )
        return replace(run, status=CRASHED if crashed else REFUSED, detail=str(error))
    if runner.device != "cpu" and runner.runtime == "torch":
        # Tracing and torch.export bake the export device into constants (LSTM initial
        # states, views): an artifact exported on the CPU is not expected to run there.
        reason = (
            f"{label}: the artifact, exported on cpu, does not run on "
            f"{runner.device}: {first_line(error)}"
        )
        outcome.skipped.append(
            Skipped(
                ctx.subject, f"compare on {runner.device}", reason, artifact_format, runner.device
            )
        )
        return replace(run, status=SKIPPED, detail=reason)
    outcome.findings.append(
        measured_finding(
            OutputMismatch,
            f"{label} fails on the example inputs: {first_line(error)}",
            ctx.subject,
            artifact,
            label,
        )
    )
    return replace(run, status=CRASHED, detail=first_line(error))


def _refusal_message(title: str, label: str, reason: str, *, crashed: bool) -> str:
    """`OpenVINO refuses this artifact (onnx on openvino/CPU/cpu): ...`, or `crashes on` it
    when the runtime's own process died."""
    if crashed:
        return f"{title} crashes on this artifact ({label}): {reason}"
    return f"{title} refuses this artifact ({label}): {reason}"


def _nonfinite_findings(
    ctx: ModelRun, compared: Sequence[Comparison], artifact: str | None, label: str
) -> list[Finding]:
    return [
        measured_finding(
            NonfiniteOutput,
            f"{label}: output {c.output} has {c.metrics.nonfinite} "
            "NaN/Inf value(s) the reference does not have",
            ctx.subject,
            artifact,
            label,
            c.output,
        )
        for c in compared
        if c.metrics.nonfinite > c.metrics.expected_nonfinite
    ]


def _check_second_batch(
    outcome: ArtifactOutcome,
    ctx: ModelRun,
    runner: Runner,
    artifact: str | None,
    artifact_format: str,
    label: str,
    first: list[np.ndarray],
    unstable: bool,
) -> list[Comparison]:
    """The artifact at a batch one larger; returns the comparisons that failed."""
    alt = second_batch(ctx.inputs)
    if alt is None:
        return []
    try:
        alt_expected = ctx.reference(runner.device, alt)
        alt_actual = runner.run(alt)
    except ModelRunError as error:
        outcome.skipped.append(
            Skipped(ctx.subject, "second batch size", error.message, artifact_format, runner.device)
        )
        return []
    except Exception as error:
        outcome.findings.append(
            measured_finding(
                OutputMismatch,
                f"{label} declares a dynamic batch but fails at batch "
                f"{alt[0].shape[0]}: {first_line(error)}",
                ctx.subject,
                artifact,
                label,
            )
        )
        return []
    extra = compare_outputs(
        ctx,
        runner,
        alt_actual,
        alt_expected,
        artifact=artifact,
        artifact_format=artifact_format,
        batch=int(alt[0].shape[0]),
    )
    outcome.comparisons += extra
    if not unstable:
        outcome.findings += _batch_statistics(ctx, first, alt_actual, artifact, label)
    return [c for c in extra if not c.passed]


def _batch_statistics(
    ctx: ModelRun,
    first: Sequence[np.ndarray],
    grown: Sequence[np.ndarray],
    artifact: str | None,
    label: str,
) -> list[Finding]:
    """The example samples' outputs, alone and with one more sample in the batch: a runtime
    that normalizes with the batch's statistics gives them other values. Measured from the
    runs the batch check makes anyway."""
    size = batch_size(ctx.inputs)
    changed = []
    for index, (alone, joined) in enumerate(zip(first, grown)):
        if size is None or alone.ndim == 0 or alone.shape[0] != size:
            continue
        if joined.shape[1:] != alone.shape[1:] or joined.shape[0] != size + 1:
            continue
        tolerance = ctx.tolerances.for_output(f"output_{index}", alone)
        metrics = measure(joined[:size], alone, tolerance)
        if metrics.mismatched:
            changed.append(metrics)
    if not changed:
        return []
    worst = max(changed, key=lambda m: m.max_abs or 0.0)
    return [
        measured_finding(
            RuntimeBatchStatistics,
            f"{label} computes batch statistics: the example samples' outputs change by up to "
            f"{relative_text(worst.max_abs or 0.0, worst.magnitude or 0.0)} when one more sample "
            "joins their batch",
            ctx.subject,
            artifact,
            label,
        )
    ]


def variant_reference(ctx: ModelRun, device: str, variant: DimensionVariant) -> list[np.ndarray]:
    """The eval-mode model at a dimension's other size, once per device; ModelRunError when the
    model itself rejects that size."""
    if device not in variant.references:
        try:
            variant.references[device] = pytorch_runner(ctx.model_on(device), device).run(
                variant.inputs
            )
        except Exception as error:
            raise ModelRunError(
                f"the model's forward raised at {variant.label}: {first_line(error)}",
                subject=ctx.subject,
            ) from None
    return variant.references[device]


def _check_dimension(
    outcome: ArtifactOutcome,
    ctx: ModelRun,
    runner: Runner,
    variant: DimensionVariant,
    artifact: str | None,
    artifact_format: str,
    label: str,
    example_matches: bool,
) -> list[Comparison]:
    """The artifact at another size of one dynamic dimension. Where it matched at the example
    size, failing or differing here is the dimension's own finding; otherwise the failing
    comparisons join the artifact's mismatch."""
    name, size = variant.dimension.name, variant.size
    try:
        expected = variant_reference(ctx, runner.device, variant)
    except ModelRunError as error:
        outcome.skipped.append(
            Skipped(
                ctx.subject, f"dynamic dimension {variant.label}", error.message, artifact_format
            )
        )
        return []
    try:
        actual = runner.run(variant.inputs)
    except Exception as error:
        if example_matches:
            outcome.findings.append(
                measured_finding(
                    SpecialisedDimension,
                    f"{label} declares dimension {name!r} dynamic but fails at {name}={size} "
                    f"(it matches at {name}={variant.example}): {first_line(error)}",
                    ctx.subject,
                    artifact,
                    label,
                )
            )
        return []
    compared = compare_outputs(
        ctx,
        runner,
        actual,
        expected,
        artifact=artifact,
        artifact_format=artifact_format,
        batch=batch_size(variant.inputs),
        run=variant.label,
    )
    outcome.comparisons += compared
    failing = [c for c in compared if not c.passed]
    if failing and example_matches:
        outputs = ", ".join(sorted({c.output for c in failing}))
        outcome.findings.append(
            measured_finding(
                SpecialisedDimension,
                f"{label} declares dimension {name!r} dynamic but differs at {name}={size} in "
                f"{outputs} (max abs {_largest(failing)}; it matches at {name}={variant.example})",
                ctx.subject,
                artifact,
                label,
            )
        )
        return []
    return failing


def attribution(ctx: ModelRun, runner: Runner, actual: list[np.ndarray], *, unstable: bool) -> str:
    """Why an artifact mismatches, where a second reference can tell."""
    if unstable:
        return "; its outputs change from run to run: a training-mode Dropout or random op runs"
    try:
        train_like = ctx.reference(runner.device, ctx.inputs, mode="batch-statistics")
        expected = ctx.reference(runner.device, ctx.inputs)
    except InputError:
        return ""
    # Where the two modes compute the same, matching one is no evidence against the other (the
    # mismatch was at another batch size or dimension).
    if _agree(expected, train_like, ctx) or not _agree(actual, train_like, ctx):
        return ""
    return (
        "; it matches the model in training mode with Dropout off instead: exported in "
        "training mode (BatchNorm on batch statistics, or a layer's training branch)"
    )


def _agree(actual: Sequence[np.ndarray], expected: Sequence[np.ndarray], ctx: ModelRun) -> bool:
    return len(actual) == len(expected) and all(
        a.shape == e.shape and measure(a, e, ctx.tolerances.for_output("", e)).mismatched == 0
        for a, e in zip(actual, expected)
    )


@dataclass
class RunnerAttempt:
    """One runtime configuration for an artifact: its runner, or why there is none (the
    configuration is unavailable here, the runtime refused the artifact, or loading crashed)."""

    runtime: Runtime
    device: str
    option: str | None
    label: str
    runner: Runner | None = None
    unavailable: str | None = None
    refused: str | None = None
    crashed: str | None = None
    runtime_crashed: bool = False
    """`refused` is the runtime's own process dying, not a reason it gave."""

    @property
    def configuration(self) -> str:
        """`openvino/CPU/cpu`, as the comparisons made in it name it."""
        if self.runner is not None:
            return runner_configuration(self.runner)
        if self.runtime.name == "onnxruntime":
            provider = "CUDA" if self.device == "cuda" else "CPU"
            return "/".join(p for p in (self.runtime.name, provider, self.device, self.option) if p)
        return "/".join(p for p in (self.runtime.name, self.option, self.device) if p)


def runners_for(
    path: str,
    kind: str,
    devices: Sequence[str],
    loaded: Any = None,
    runtimes: Sequence[Runtime] = RUNTIMES,
) -> Iterator[RunnerAttempt]:
    """Every configuration of every chosen runtime that runs this kind of artifact, per device.
    A runtime's refusal or a crash of its loader is the attempt's outcome, never raised."""
    for device in devices:
        for runtime in runtimes:
            if kind not in runtime.kinds or not runtime.installed():
                continue
            try:
                options = runtime.options(kind, device)
            except Exception as error:  # its process died listing them: its first load did
                yield _failed(
                    RunnerAttempt(runtime, device, None, runtime.label(device, None)), error
                )
                continue
            for option in options:
                attempt = RunnerAttempt(runtime, device, option, runtime.label(device, option))
                try:
                    attempt.runner = runtime.load(path, kind, device, option, loaded)
                except Exception as error:
                    _failed(attempt, error)
                yield attempt


def _failed(attempt: RunnerAttempt, error: Exception) -> RunnerAttempt:
    """The attempt, with why it got no runner; an input error is raised on."""
    if isinstance(error, InputError):
        raise error
    if isinstance(error, RunnerUnavailable):
        attempt.unavailable = str(error)
    elif isinstance(error, RuntimeRefused):
        attempt.refused = str(error)
        attempt.runtime_crashed = isinstance(error, RuntimeCrashed)
    else:
        attempt.crashed = first_line(error)
    return attempt


def artifact_kind(fmt: str) -> str:
    """The kind of file a format's artifact is: onnx, torchscript or exported-program."""
    return (
        "onnx"
        if fmt.startswith("onnx")
        else ("torchscript" if fmt.startswith("torchscript") else "exported-program")
    )


def declared_shapes(path: str, kind: str, loaded: Any) -> DeclaredShapes:
    """What the artifact declares dynamic: an ONNX file's graph inputs, an ExportedProgram's
    symbols; a TorchScript module declares nothing."""
    if kind == "onnx":
        return onnx_shapes(path)
    if kind == "exported-program" and loaded is not None:
        return program_shapes(loaded)
    return NOTHING_DECLARED


def _dimension_variants(
    ctx: ModelRun, shapes: DeclaredShapes, fmt: str
) -> tuple[list[DimensionVariant], list[Skipped]]:
    """The inputs that exercise each dynamic dimension besides the batch, once per artifact."""
    if not shapes.dimensions:
        return [], []
    made, left_out = variants(ctx.inputs, shapes.dimensions)
    skipped = [Skipped(ctx.subject, "dynamic dimension", why, fmt) for why in left_out]
    usable = []
    for variant in made:
        try:
            variant_reference(ctx, "cpu", variant)
        except ModelRunError as error:
            skipped.append(
                Skipped(
                    ctx.subject,
                    f"dynamic dimension {variant.label}",
                    f"the model rejects this size: {error.message}",
                    fmt,
                )
            )
            continue
        usable.append(variant)
    return usable, skipped


def inspect_and_compare_artifact(
    ctx: ModelRun,
    path: str,
    fmt: str,
    devices: Sequence[str],
    *,
    dynamic_batch: bool | None = None,
    artifact_label: str | None,
    runtimes: Sequence[Runtime] = RUNTIMES,
    localize: bool = False,
    model_findings: Sequence[Finding] = (),
) -> ArtifactOutcome:
    """Static rules, then every runtime configuration, for one artifact file. `model_findings`:
    what is known of the model itself (its randomness in eval mode), in the outcome before the
    comparisons, so that a mismatch it explains is not localized in the artifact.
    `dynamic_batch`: as in `compare_inspected_artifact`."""
    outcome, cleared = inspect_before_loading(
        ctx, path, fmt, devices, artifact_label=artifact_label, runtimes=runtimes
    )
    outcome.findings += model_findings
    if not cleared:
        return outcome
    return compare_inspected_artifact(
        ctx,
        path,
        fmt,
        devices,
        outcome,
        dynamic_batch=dynamic_batch,
        artifact_label=artifact_label,
        runtimes=runtimes,
        localize=localize,
    )


def inspect_before_loading(
    ctx: ModelRun,
    path: str,
    fmt: str,
    devices: Sequence[str],
    *,
    artifact_label: str | None,
    runtimes: Sequence[Runtime] = RUNTIMES,
) -> tuple[ArtifactOutcome, bool]:
    """The static rules' findings on one artifact file, and whether it may be loaded: only
    when they found nothing unsafe in it, as a loader executes what the archive holds. Then
    every runtime that runs it starts loading it (one in a process of its own compiles it
    meanwhile); else the outcome says why it is not compared."""
    outcome = ArtifactOutcome()
    ctx.progress(f"{ctx.subject}: inspect {fmt}")
    kind = artifact_kind(fmt)
    for found in inspect_artifact(path, subject=ctx.subject):
        outcome.findings.append(_relabel(found, artifact_label))
    unsafe = [f for f in outcome.findings if f.rule == UnsafeArchiveContent.slug]
    if unsafe:
        outcome.skipped.append(
            Skipped(
                ctx.subject,
                f"compare {fmt}",
                f"not loaded: the archive holds unsafe content ({unsafe[0].message})",
                fmt,
            )
        )
        return outcome, False
    for runtime in runtimes:
        if kind in runtime.kinds and runtime.installed():
            runtime.prefetch(path, kind, devices)
    return outcome, True


def compare_inspected_artifact(
    ctx: ModelRun,
    path: str,
    fmt: str,
    devices: Sequence[str],
    inspected: ArtifactOutcome,
    *,
    dynamic_batch: bool | None = None,
    artifact_label: str | None,
    runtimes: Sequence[Runtime] = RUNTIMES,
    localize: bool = False,
) -> ArtifactOutcome:
    """Every runtime configuration for an artifact the static rules cleared
    (`inspect_before_loading`), added to their outcome. `dynamic_batch`: whether a second batch
    size is run, as the exporter that made the artifact knows; None: as the artifact declares
    (`declared_shapes`)."""
    outcome = inspected
    kind = artifact_kind(fmt)
    installed = [r for r in runtimes if kind in r.kinds and r.installed()]
    try:
        loaded = load_torch_artifact(path, kind) if kind != "onnx" else None
        shapes = declared_shapes(path, kind, loaded)
        if dynamic_batch is None:
            dynamic_batch = shapes.batch_is_dynamic
        dimension_variants, passed_over = _dimension_variants(ctx, shapes, fmt)
        outcome.skipped += passed_over
        for attempt in runners_for(path, kind, devices, loaded, runtimes):
            runner = attempt.runner
            run = RuntimeRun(
                ctx.subject,
                artifact_label,
                fmt,
                attempt.runtime.name,
                attempt.configuration,
                RAN,
                version=_described(attempt.runtime),
            )
            if runner is None:
                outcome.runs.append(
                    _without_runner(outcome, ctx, attempt, run, artifact_label, fmt)
                )
                continue
            ctx.progress(f"{ctx.subject}: compare {fmt} on {attempt.label}")
            with tf32(ctx.allow_tf32) if runner.device == "cuda" else contextlib.nullcontext():
                part = check_runner(
                    ctx,
                    runner,
                    artifact=artifact_label,
                    artifact_format=fmt,
                    dynamic_batch=dynamic_batch,
                    dimension_variants=dimension_variants,
                )
            outcome.comparisons += part.comparisons
            outcome.findings += part.findings
            outcome.skipped += part.skipped
            outcome.runs += [replace(r, version=run.version) for r in part.runs]
            del runner
    finally:
        for runtime in installed:
            runtime.forget(path)
    if kind == "onnx":
        outcome.findings = located_refusals(outcome.findings, outcome.runs, path)
    if localize or needs_localization(outcome.findings, outcome.comparisons):
        ctx.progress(f"{ctx.subject}: localize {fmt}")
        # It runs the model with hooks on: not while an export traces it on the other thread.
        with ctx.model_lock:
            trace, failure = localize_artifact(
                ctx.model_on("cpu"), path if loaded is None else loaded, kind, ctx.inputs, fmt
            )
        outcome.findings = localization_findings(
            outcome.findings, trace, subject=ctx.subject, artifact=artifact_label, failure=failure
        )
    return _with_causes(outcome)


def _described(runtime: Runtime) -> str | None:
    try:
        return runtime.describe()
    except Exception:  # a version lookup is no reason to lose the comparison
        return None


def _without_runner(
    outcome: ArtifactOutcome,
    ctx: ModelRun,
    attempt: RunnerAttempt,
    run: RuntimeRun,
    artifact: str | None,
    fmt: str,
) -> RuntimeRun:
    """Records a configuration that got no runner: skipped, refused (a finding), crashed."""
    label = run.runner_label
    title = attempt.runtime.title
    if attempt.refused is not None:
        crashed = attempt.runtime_crashed
        outcome.findings.append(
            measured_finding(
                RuntimeRefusal,
                _refusal_message(title, label, attempt.refused, crashed=crashed),
                ctx.subject,
                artifact,
                label,
            )
        )
        return replace(run, status=CRASHED if crashed else REFUSED, detail=attempt.refused)
    if attempt.crashed is not None:
        outcome.skipped.append(
            Skipped(
                ctx.subject,
                f"compare {attempt.label}",
                f"exportcheck's {title} adapter crashed: {attempt.crashed}",
                fmt,
                attempt.device,
            )
        )
        return replace(run, status=CRASHED, detail=attempt.crashed)
    reason = attempt.unavailable or "unavailable"
    outcome.skipped.append(
        Skipped(ctx.subject, f"compare {attempt.label}", reason, fmt, attempt.device)
    )
    return replace(run, status=SKIPPED, detail=reason)


def _with_causes(outcome: ArtifactOutcome) -> ArtifactOutcome:
    """Numerical findings take the module of the graph finding that likeliest explains them
    (the same choice the report's problems make), so a finding read alone still points there."""
    causes = [f for f in outcome.findings if f.stage != CONSEQUENCE_STAGE and f.location.module]
    if not causes:
        return outcome
    unstable = {
        f.location.runtime for f in outcome.findings if f.rule == RuntimeNondeterminism.slug
    }
    explained = []
    for finding in outcome.findings:
        cause = None
        if finding.stage == CONSEQUENCE_STAGE:
            cause = explaining_cause(finding, causes, unstable=finding.location.runtime in unstable)
        if cause is not None:
            finding = replace(
                finding,
                message=_consequence_message(finding, cause),
                location=replace(finding.location, module=cause.location.module),
            )
        explained.append(finding)
    outcome.findings = explained
    return outcome


# Findings that say nothing of a mode unless they name the problem behind them.
_NAMES_ITS_CAUSE = (RuntimeRefusal.slug, RuntimeBatchStatistics.slug)


def _consequence_message(finding: Finding, cause: Finding) -> str:
    """`OpenVINO refuses this artifact (...): Training mode is not supported for Dropout op; a
    consequence of EC101 at head.py:32`: a runtime's verdict read alone still names its cause."""
    if finding.rule not in _NAMES_ITS_CAUSE:
        return finding.message
    where = cause.location
    if where.source_file and where.source_line:
        place = f"{os.path.basename(where.source_file)}:{where.source_line}"
    else:
        place = f"module {where.module}"
    return f"{finding.message}; a consequence of {cause.code} at {place}"


def _relabel(finding: Finding, artifact: str | None) -> Finding:
    return replace(finding, location=replace(finding.location, artifact=artifact))

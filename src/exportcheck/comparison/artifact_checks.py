"""Checks one artifact: the graph rules, then every runtime configuration (ONNX Runtime per
provider and optimization level, torch per device) against the eval-mode reference, run twice
and at a second batch size; numerical findings take the module of the cause that explains them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from exportcheck.auditing.probes import batch_size, companions
from exportcheck.comparison.loaders import load_torch_artifact
from exportcheck.comparison.reference import ModelRun, compare_outputs, measured_finding
from exportcheck.comparison.runtimes import (
    OPTIMIZATION_LEVELS,
    Runner,
    RunnerUnavailable,
    onnx_runner,
    torch_runner,
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
from exportcheck.results.comparison import Comparison
from exportcheck.results.findings import Finding
from exportcheck.results.problems import CONSEQUENCE_STAGE, explaining_cause
from exportcheck.results.report import Skipped
from exportcheck.rules import (
    NonfiniteOutput,
    OutputMismatch,
    RuntimeNondeterminism,
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


def runner_label(runner: Runner, artifact_format: str) -> str:
    """`onnx on onnxruntime/CPU/cpu/ORT_DISABLE_ALL`: the configuration a measurement ran in."""
    parts = (
        runner.provider and runner.provider.replace("ExecutionProvider", ""),
        runner.device,
        runner.optimization,
    )
    return f"{artifact_format} on {runner.runtime}/" + "/".join(p for p in parts if p)


def check_runner(
    ctx: ModelRun,
    runner: Runner,
    *,
    artifact: str | None,
    artifact_format: str,
    dynamic_batch: bool,
) -> ArtifactOutcome:
    """Runs one artifact configuration twice on the example inputs (and once on a second batch
    size when the batch is dynamic) and compares with the eval-mode reference on its device."""
    outcome = ArtifactOutcome()
    label = runner_label(runner, artifact_format)
    size = batch_size(ctx.inputs)
    try:
        first = runner.run(ctx.inputs)
        second = runner.run(ctx.inputs)
    except Exception as error:
        _record_run_failure(outcome, ctx, runner, error, artifact, artifact_format, label)
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
        worst = max((c.metrics.max_abs or 0.0) for c in unstable)
        outcome.findings.append(
            measured_finding(
                RuntimeNondeterminism,
                f"{label}: two runs of the same input differ by up to {worst:.3g} in "
                f"{', '.join(c.output for c in unstable)}",
                ctx.subject,
                artifact,
                label,
            )
        )
    outcome.findings += _nonfinite_findings(ctx, compared, artifact, label)
    failing = [c for c in compared if not c.passed]
    if dynamic_batch:
        failing += _check_second_batch(outcome, ctx, runner, artifact, artifact_format, label)
    if failing:
        worst = max(
            (c.metrics.max_abs if c.metrics.max_abs is not None else float("inf")) for c in failing
        )
        outputs = ", ".join(sorted({f"{c.output}@batch{c.batch_size}" for c in failing}))
        message = f"{label} differs from the eval-mode model in {outputs} (max abs {worst:.3g})"
        message += attribution(ctx, runner, first, unstable=bool(unstable))
        outcome.findings.append(
            measured_finding(OutputMismatch, message, ctx.subject, artifact, label)
        )
    return outcome


def _record_run_failure(
    outcome: ArtifactOutcome,
    ctx: ModelRun,
    runner: Runner,
    error: Exception,
    artifact: str | None,
    artifact_format: str,
    label: str,
) -> None:
    if runner.device != "cpu" and runner.runtime == "torch":
        # Tracing and torch.export bake the export device into constants (LSTM initial
        # states, views): an artifact exported on the CPU is not expected to run there.
        outcome.skipped.append(
            Skipped(
                ctx.subject,
                f"compare on {runner.device}",
                f"{label}: the artifact, exported on cpu, does not run on "
                f"{runner.device}: {first_line(error)}",
                artifact_format,
                runner.device,
            )
        )
        return
    outcome.findings.append(
        measured_finding(
            OutputMismatch,
            f"{label} fails on the example inputs: {first_line(error)}",
            ctx.subject,
            artifact,
            label,
        )
    )


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
    return [c for c in extra if not c.passed]


def attribution(ctx: ModelRun, runner: Runner, actual: list[np.ndarray], *, unstable: bool) -> str:
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


def inspect_and_compare_artifact(
    ctx: ModelRun,
    path: str,
    fmt: str,
    devices: Sequence[str],
    *,
    dynamic_batch: bool,
    artifact_label: str | None,
    localize: bool = False,
) -> ArtifactOutcome:
    """Static rules, then every runtime configuration, for one artifact file.

    The file is loaded to run only after the static pass found nothing unsafe in it: a loader
    executes what the archive holds."""
    outcome = ArtifactOutcome()
    ctx.progress(f"{ctx.subject}: inspect {fmt}")
    kind = _artifact_kind(fmt)
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
        return outcome
    loaded = load_torch_artifact(path, kind) if kind != "onnx" else None
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
    if localize or needs_localization(outcome.findings, outcome.comparisons):
        ctx.progress(f"{ctx.subject}: localize {fmt}")
        trace, failure = localize_artifact(
            ctx.model_on("cpu"), path if loaded is None else loaded, kind, ctx.inputs, fmt
        )
        outcome.findings = localization_findings(
            outcome.findings, trace, subject=ctx.subject, artifact=artifact_label, failure=failure
        )
    return _with_causes(outcome)


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
                finding, location=replace(finding.location, module=cause.location.module)
            )
        explained.append(finding)
    outcome.findings = explained
    return outcome


def _relabel(finding: Finding, artifact: str | None) -> Finding:
    return replace(finding, location=replace(finding.location, artifact=artifact))

"""One model under validation: its eval-mode copies per device, every reference output computed
once and reused, the tolerances, and the checks that need only the model (probes, NaN, devices)."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from exportcheck.auditing.modes import batch_statistics_mode
from exportcheck.auditing.probes import batch_size, run_probes
from exportcheck.comparison.devices import tf32
from exportcheck.comparison.metrics import default_tolerance, measure
from exportcheck.comparison.runtimes import Runner, pytorch_runner
from exportcheck.errors import ModelRunError, first_line
from exportcheck.results.comparison import Comparison, OutputMetrics, Tolerance
from exportcheck.results.findings import Finding, Location
from exportcheck.results.report import Skipped
from exportcheck.rules import NonfiniteOutput, Rule

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
class ModelRun:
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
                        f"{first_line(error)}",
                        subject=self.subject,
                    ) from None
        return self.references[key]


def quiet_progress(_: str) -> None:
    return None


def measured_finding(
    rule: type[Rule],
    message: str,
    subject: str,
    artifact: str | None,
    runtime: str,
    output: str | None = None,
) -> Finding:
    """A finding from a measurement: where it ran (the runtime label) and of which output."""
    return rule.finding(
        message, subject, Location(artifact=artifact, runtime=runtime, output=output)
    )


def compare_outputs(
    ctx: ModelRun,
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
    """One Comparison per output (or one for a wrong number of outputs)."""

    def comparison(output: str, metrics: OutputMetrics, tolerance: Tolerance) -> Comparison:
        return Comparison(
            ctx.subject,
            artifact,
            artifact_format,
            runner.runtime,
            runner.device,
            output,
            metrics,
            tolerance,
            runner.provider,
            runner.optimization,
            reference,
            batch,
            run,
        )

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
        return [comparison("(number of outputs)", metrics, Tolerance(0.0, 0.0, "exact"))]
    names = runner.output_names or [f"output_{i}" for i in range(len(expected))]
    comparisons = []
    for index, (a, e) in enumerate(zip(actual, expected)):
        name = names[index] if index < len(names) else f"output_{index}"
        tolerance = ctx.tolerances.for_output(name, e)
        comparisons.append(comparison(name, measure(a, e, tolerance), tolerance))
    return comparisons


def probe_on_devices(
    ctx: ModelRun, devices: Sequence[str], tolerance: Tolerance | None
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


def reference_findings(ctx: ModelRun, device: str = "cpu") -> list[Finding]:
    """NaN/Inf in the eval-mode reference itself: nothing downstream can be proven for them."""
    findings = []
    for index, value in enumerate(ctx.reference(device, ctx.inputs)):
        if value.dtype.kind in "fc":
            bad = int(value.size - np.count_nonzero(np.isfinite(value)))
            if bad:
                findings.append(
                    measured_finding(
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


def cross_device(ctx: ModelRun, devices: Sequence[str]) -> list[Comparison]:
    """The eval-mode model on CUDA against itself on CPU (TF32 shows here when allowed)."""
    if "cuda" not in devices or "cpu" not in devices:
        return []
    cpu = ctx.reference("cpu", ctx.inputs)
    cuda = ctx.reference("cuda", ctx.inputs)
    runner = pytorch_runner(ctx.model_on("cuda"), "cuda")
    tf = "tf32 allowed" if ctx.allow_tf32 else "tf32 off"
    return compare_outputs(
        ctx,
        runner,
        cuda,
        cpu,
        artifact=None,
        artifact_format=f"pytorch ({tf})",
        batch=batch_size(ctx.inputs),
        reference="pytorch-eval cpu",
    )

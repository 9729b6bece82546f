"""One model under validation: its eval-mode copies per device, every reference output computed
once and reused, the tolerances, and the checks that need only the model (probes, NaN, devices)."""

from __future__ import annotations

import contextlib
import copy
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from exportcheck.auditing.modes import batch_statistics_mode
from exportcheck.auditing.probes import (
    batch_size,
    nondeterminism_probe,
    run_probes,
    seeded_forward,
)
from exportcheck.comparison.runtimes import Runner, pytorch_runner
from exportcheck.errors import ModelRunError, first_line
from exportcheck.numerics.devices import tf32
from exportcheck.numerics.metrics import (
    coarser_tolerance,
    measure,
    scale_share,
    scaled_tolerance,
    to_numpy,
)
from exportcheck.results.comparison import (
    Comparison,
    NotRejudgeable,
    OutputMetrics,
    Tolerance,
    judge,
)
from exportcheck.results.findings import Finding, Location
from exportcheck.results.report import Skipped
from exportcheck.rules import NonfiniteOutput, Rule

Progress = Callable[[str], None]


NOISE_MULTIPLE = 10.0
# Float32 rounding through a network stays orders of magnitude below a behavioural difference
# (measured: 1e-7..2e-6 at the output of 50-layer nets, against 1e-2..1e0 for a mode bug). A
# float64-vs-float32 difference above this share of the output's scale is not rounding (an
# ill-conditioned or nondeterministic model) and never widens a tolerance.
MAX_NOISE_SHARE = 1e-4


@dataclass(frozen=True)
class Noise:
    """The eval-mode model's own rounding noise on one output: max |float32 - float64| on the
    CPU reference, or why it was not measured or not used."""

    value: float | None
    reason: str = ""


@dataclass(frozen=True)
class Tolerances:
    """How each output is judged, first match wins: a per-output tolerance from the config;
    `--rtol/--atol` (the unset one from the dtype default); else the artifact dtype's default,
    with atol raised to the rounding share of the output's magnitude (`scaled_tolerance`, as the
    probes judge) and widened to NOISE_MULTIPLE times the model's measured rounding noise where
    either is larger."""

    rtol: float | None = None
    atol: float | None = None
    per_output: Mapping[str, Tolerance] = field(default_factory=dict)
    noise_multiple: float = NOISE_MULTIPLE

    @property
    def overridden(self) -> bool:
        return self.rtol is not None or self.atol is not None

    def for_output(
        self,
        name: str,
        expected: np.ndarray,
        actual: np.ndarray | None = None,
        noise: Noise | None = None,
    ) -> Tolerance:
        if name in self.per_output:
            return self.per_output[name]
        dtypes = (expected.dtype if actual is None else actual.dtype, expected.dtype)
        default = coarser_tolerance(*dtypes)
        if self.overridden:
            return Tolerance(
                rtol=default.rtol if self.rtol is None else self.rtol,
                atol=default.atol if self.atol is None else self.atol,
                source="command line",
            )
        # Judged relative to the output's magnitude, as the probes judge: rounding through the
        # network grows with the largest value, so an element near zero beside logits of 1e8
        # carries a difference of ~100 that no elementwise rtol allows.
        base = scaled_tolerance(default, expected, max(dtypes, key=scale_share))
        if noise is None:
            return base
        if noise.value is None:
            return replace(base, source=f"{base.source} (model noise not used: {noise.reason})")
        widened = self.noise_multiple * noise.value
        if widened <= base.atol:
            return replace(
                base,
                source=f"{base.source} (above {self.noise_multiple:g} x model noise "
                f"{noise.value:.2g})",
                noise=noise.value,
            )
        return Tolerance(
            rtol=base.rtol,
            atol=widened,
            source=f"{self.noise_multiple:g} x model noise {noise.value:.2g} (float32 against "
            f"a float64 reference on cpu), above the {base.source}",
            noise=noise.value,
        )

    def probe_tolerance(self) -> Tolerance | None:
        if self.rtol is None and self.atol is None:
            return None
        return Tolerance(rtol=self.rtol or 0.0, atol=self.atol or 0.0, source="command line")


def output_noise(reference: np.ndarray, precise: np.ndarray | None, failure: str = "") -> Noise:
    """The rounding noise of one float32 (or coarser) output against its float64 twin."""
    if precise is None:
        return Noise(None, failure)
    if reference.dtype.kind != "f" or reference.dtype == np.float64:
        return Noise(None, f"{reference.dtype} output")
    if reference.shape != precise.shape:
        return Noise(None, "the float64 model gives another shape")
    ref = reference.astype(np.float64)
    finite = np.isfinite(ref) & np.isfinite(precise)
    if not finite.any():
        return Noise(None, "no finite values")
    value = float(np.abs(ref[finite] - precise[finite]).max())
    scale = max(1.0, float(np.abs(precise[finite]).max()))
    if value > MAX_NOISE_SHARE * scale:
        return Noise(
            None,
            f"float64 and float32 differ by {value:.2g}, more than rounding "
            f"({MAX_NOISE_SHARE:g} of the output's scale {scale:.3g})",
        )
    return Noise(value)


def input_key(inputs: Sequence[Any]) -> tuple[Any, ...]:
    """What identifies a batch of inputs by content: dtype, shape and a digest of the bytes of
    each tensor, so two runs of equal inputs, however they were made, share one forward."""
    import hashlib

    import torch

    key: list[Any] = []
    for x in inputs:
        if isinstance(x, torch.Tensor):
            try:
                flat = x.detach().cpu().contiguous().reshape(-1)
                digest = hashlib.blake2b(flat.view(torch.uint8).numpy().data, digest_size=16)
            except (RuntimeError, TypeError):  # sparse, nested, quantized: by identity
                key.append(("object", x))  # held by the key, so its id is never reused
                continue
            key.append((str(x.dtype), tuple(x.shape), digest.hexdigest()))
        else:
            key.append(repr(x))
    return tuple(key)


@dataclass
class ModelRun:
    """One model's run: the eval-mode copies per device and every forward of them, computed
    once. One seeded eval-mode run of each input batch serves the reference, the first seed of
    the determinism probe and the batch-independence probe's runs; `forward_passes` counts the
    forwards run here, by kind."""

    model: Any
    inputs: tuple[Any, ...]
    subject: str
    tolerances: Tolerances
    allow_tf32: bool
    progress: Progress
    models: dict[str, Any] = field(default_factory=dict)
    outputs: dict[tuple[Any, ...], list[Any] | BaseException] = field(default_factory=dict)
    references: dict[tuple[Any, ...], list[np.ndarray]] = field(default_factory=dict)
    noise: list[Noise] | None = None
    forward_passes: Counter[str] = field(default_factory=Counter)
    # Held by whatever runs or exports the model, so an artifact check on another thread never
    # runs it while an exporter traces it (torch.export swaps its parameters meanwhile).
    model_lock: threading.RLock = field(default_factory=threading.RLock)

    def output_noise(self, index: int) -> Noise | None:
        """The model's rounding noise on one output, measured once (one float64 forward on the
        CPU) and only when no tolerance is given on the command line."""
        if self.tolerances.overridden:
            return None
        if self.noise is None:
            with self.model_lock:
                if self.noise is None:
                    self.noise = self._measure_noise()
        return self.noise[index] if index < len(self.noise) else None

    def noise_could_decide(self, index: int, metrics: OutputMetrics, base: Tolerance) -> bool:
        """Whether measuring the model's noise could turn this failing comparison into a pass:
        the largest widening the noise can give (NOISE_MULTIPLE x the largest noise
        `output_noise` accepts on this output's scale) would have to pass it."""
        if self.tolerances.overridden:
            return False
        if self.noise is not None:
            return True
        reference = self.reference("cpu", self.inputs)
        if index >= len(reference) or reference[index].dtype.kind != "f":
            return False
        values = reference[index].astype(np.float64)
        finite = values[np.isfinite(values)]
        if not finite.size:
            return False
        # |float64| <= |float32| + noise, and noise <= MAX_NOISE_SHARE x that scale.
        scale = max(1.0, float(np.abs(finite).max())) / (1.0 - MAX_NOISE_SHARE)
        widest = self.tolerances.noise_multiple * MAX_NOISE_SHARE * scale
        if widest <= base.atol:
            return False
        try:
            return judge(metrics, replace(base, atol=widest))
        except NotRejudgeable:
            return True

    def _measure_noise(self) -> list[Noise]:
        import torch

        reference = self.reference("cpu", self.inputs)
        try:
            precise_model = copy.deepcopy(self.model_on("cpu")).double()
            precise_inputs = tuple(
                x.double() if isinstance(x, torch.Tensor) and x.is_floating_point() else x
                for x in self.inputs
            )
            self.forward_passes["float64"] += 1
            precise = pytorch_runner(precise_model, "cpu").run(precise_inputs)
        except Exception as error:
            why = f"the float64 model raised: {first_line(error)}"
            return [output_noise(r, None, why) for r in reference]
        if len(precise) != len(reference):
            return [
                output_noise(r, None, "the float64 model gives other outputs") for r in reference
            ]
        return [output_noise(r, p.astype(np.float64)) for r, p in zip(reference, precise)]

    def model_on(self, device: str) -> Any:
        if device not in self.models:
            self.models[device] = (
                self.model if device == "cpu" else copy.deepcopy(self.model).to(device)
            )
        return self.models[device]

    def forward(self, device: str, inputs: Sequence[Any], mode: str = "eval") -> list[Any]:
        """The model's output tensors on `inputs` (moved to `device`), run once per content:
        eval mode under the probes' first seed, or with BatchNorm on batch statistics and
        Dropout off. A forward that raised raises the same exception again, unrun."""
        key = (device, mode, input_key(inputs))
        if key not in self.outputs:  # the lock waits for an export: taken only to run
            with self.model_lock:
                self._forward(key, device, inputs, mode)
        found = self.outputs[key]
        if isinstance(found, BaseException):
            raise found
        return found

    def _forward(self, key: tuple[Any, ...], device: str, inputs: Sequence[Any], mode: str) -> None:
        if key not in self.outputs:
            model = self.model_on(device)
            moved = tuple(x.to(device) for x in inputs)
            self.forward_passes[mode] += 1
            with tf32(self.allow_tf32) if device == "cuda" else contextlib.nullcontext():
                try:
                    if mode == "eval":
                        self.outputs[key] = seeded_forward(model, moved)
                    else:
                        with batch_statistics_mode(model):
                            self.outputs[key] = seeded_forward(model, moved)
                except Exception as error:
                    self.outputs[key] = error

    def reference(
        self, device: str, inputs: tuple[Any, ...], mode: str = "eval"
    ) -> list[np.ndarray]:
        """`forward` as numpy arrays; a forward that raises becomes a ModelRunError."""
        key = (device, mode, input_key(inputs))
        found = self.references.get(key)
        if found is not None:
            return found
        with self.model_lock:
            return self._reference(key, device, inputs, mode)

    def _reference(
        self, key: tuple[Any, ...], device: str, inputs: tuple[Any, ...], mode: str
    ) -> list[np.ndarray]:
        if key not in self.references:
            try:
                outputs = self.forward(device, inputs, mode)
            except Exception as error:
                raise ModelRunError(
                    f"the model's forward raised on the example inputs ({device}): "
                    f"{first_line(error)}",
                    subject=self.subject,
                ) from None
            self.references[key] = [to_numpy(t) for t in outputs]
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
        tolerance = ctx.tolerances.for_output(name, e, a)
        metrics = measure(a, e, tolerance)
        if (
            name not in ctx.tolerances.per_output
            and not judge(metrics, tolerance)
            and ctx.noise_could_decide(index, metrics, tolerance)
        ):
            tolerance = ctx.tolerances.for_output(name, e, a, ctx.output_noise(index))
            metrics = measure(a, e, tolerance)
        comparisons.append(comparison(name, metrics, tolerance))
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
                ctx.model_on(device),
                device_inputs,
                ctx.subject,
                device,
                tolerance,
                forward=lambda batch, device=device: ctx.forward(device, batch),
            )
        findings += outcome.findings
        skipped += outcome.skipped
    return findings, skipped


def eval_randomness(ctx: ModelRun, device: str = "cpu") -> list[Finding]:
    """The determinism probe alone: whether the eval-mode model itself gives another output
    under another seed (`F.dropout` left at its default `training=True`). No artifact can
    match such a model, and a mismatch with it is the model's problem, not the export's. One
    forward beyond the reference, which runs under the probe's first seed."""
    model = ctx.model_on(device)
    inputs = tuple(x.to(device) for x in ctx.inputs)
    with ctx.model_lock:
        findings, _ = nondeterminism_probe(
            model,
            inputs,
            ctx.subject,
            device,
            ctx.tolerances.probe_tolerance(),
            forward=lambda batch: ctx.forward(device, batch),
        )
    return findings


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

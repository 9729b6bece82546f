"""Behavioural probes on the eval-mode model: same input twice, one sample alone versus in a batch.

Each probe that fails is localized with forward hooks to the first module (in completion order)
whose output differs between the two runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from exportcheck.comparison.metrics import default_tolerance, flatten, measure, to_numpy
from exportcheck.errors import first_line
from exportcheck.results.comparison import Tolerance
from exportcheck.results.findings import Finding, Location
from exportcheck.results.report import Skipped
from exportcheck.rules import BatchDependentEval, NondeterministicEval

SEEDS = (1234, 98765)


@dataclass
class _Recorder:
    """Records every module's output tensors, keyed by module path and call number."""

    names: dict[int, str]
    records: list[tuple[tuple[str, int], list[Any]]] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)

    def __call__(self, module: Any, args: Any, output: Any) -> None:
        name = self.names.get(id(module), "?")
        count = self.calls.get(name, 0)
        self.calls[name] = count + 1
        self.records.append(((name, count), [t.detach().clone() for t in flatten(output)]))


@contextlib.contextmanager
def _recording(model: Any) -> Iterator[_Recorder]:
    recorder = _Recorder({id(m): name for name, m in model.named_modules()})
    handles = [m.register_forward_hook(recorder) for m in model.modules()]
    try:
        yield recorder
    finally:
        for handle in handles:
            handle.remove()


def _forward(
    model: Any, inputs: Sequence[Any], seed: int, record: bool
) -> tuple[list[Any], _Recorder | None]:
    import torch

    devices = (
        [torch.cuda.current_device()] if any(getattr(x, "is_cuda", False) for x in inputs) else []
    )
    with torch.random.fork_rng(devices=devices), torch.inference_mode():
        torch.manual_seed(seed)
        if record:
            with _recording(model) as recorder:
                output = model(*inputs)
            return [t.detach().clone() for t in flatten(output)], recorder
        return [t.detach().clone() for t in flatten(model(*inputs))], None


def _tolerance(tensor: Any, override: Tolerance | None) -> Tolerance:
    return override or default_tolerance(tensor.dtype)


def _outputs_differ(
    first: list[Any], second: list[Any], override: Tolerance | None
) -> float | None:
    """The largest difference found beyond tolerance, or None when the outputs agree."""
    worst: float | None = None
    if len(first) != len(second):
        return float("inf")
    for a, b in zip(first, second):
        if a.shape != b.shape:
            return float("inf")
        if not (a.is_floating_point() or a.is_complex()):
            if not bool((a == b).all()):
                return float("inf")
            continue
        metrics = measure(to_numpy(a), to_numpy(b), _tolerance(b, override))
        if metrics.mismatched:
            worst = max(worst or 0.0, metrics.max_abs or float("inf"))
    return worst


def _first_divergence(
    first: _Recorder,
    second: _Recorder,
    override: Tolerance | None,
    sizes: tuple[int, int] | None = None,
) -> tuple[str, int] | None:
    """The first module whose outputs differ; with `sizes`, only sample 0 of batched tensors."""
    later = dict(second.records)
    for key, tensors in first.records:
        other = later.get(key)
        if other is None:
            continue
        if sizes:
            pairs = [
                (a[:1], b[:1])
                for a, b in zip(tensors, other)
                if a.dim() > 0
                and b.dim() > 0
                and a.shape[0] == sizes[0]
                and b.shape[0] == sizes[1]
                and a.shape[1:] == b.shape[1:]
            ]
        else:
            pairs = list(zip(tensors, other))
        if any(_outputs_differ([a], [b], override) is not None for a, b in pairs):
            return key
    return None


def _label(key: tuple[str, int] | None) -> str | None:
    if key is None:
        return None
    name, call = key
    return (name or "<root>") + (f" (call {call + 1})" if call else "")


def batch_size(inputs: Sequence[Any]) -> int | None:
    sizes = {x.shape[0] for x in inputs if getattr(x, "dim", lambda: 0)() > 0}
    return sizes.pop() if len(sizes) == 1 else None


def companions(inputs: Sequence[Any], count: int, seed: int) -> tuple[Any, ...]:
    """`count` new samples shaped like the first, different from the originals."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    made = []
    for x in inputs:
        shape = (count, *x.shape[1:])
        if x.is_floating_point():
            sample = torch.randn(shape, generator=generator) * (
                (float(x.float().std()) if x.numel() > 1 else 1.0) + 1e-3
            ) + float(x.float().mean())
            made.append(sample.to(device=x.device, dtype=x.dtype))
        else:
            low, high = int(x.min()), int(x.max()) + 1
            made.append(
                torch.randint(low, max(high, low + 1), shape, generator=generator).to(
                    device=x.device, dtype=x.dtype
                )
            )
    return tuple(made)


def _probe_finding(
    rule: Any, message: str, subject: str, device: str, key: tuple[str, int] | None
) -> Finding:
    module = _label(key)
    return Finding(
        rule=rule.slug,
        code=rule.code,
        severity=rule.severity,
        message=f"{message}; first differing module: {module or 'unknown'}",
        subject=subject,
        location=Location(
            scope=f"pytorch eval ({device})",
            node=module,
            op_type="forward",
            module=key[0] if key and key[0] else None,
        ),
    )


@dataclass(frozen=True)
class ProbeOutcome:
    findings: tuple[Finding, ...]
    skipped: tuple[Skipped, ...]


def run_probes(
    model: Any,
    inputs: Sequence[Any],
    subject: str,
    device: str = "cpu",
    tolerance: Tolerance | None = None,
) -> ProbeOutcome:
    """Both probes on a model that is already in eval mode."""
    import torch

    findings: list[Finding] = []
    skipped: list[Skipped] = []
    where = f" on {device}"

    first, rec_a = _forward(model, inputs, SEEDS[0], record=False)
    second, _ = _forward(model, inputs, SEEDS[1], record=False)
    random_keys: frozenset[tuple[str, int]] = frozenset()
    gap = _outputs_differ(first, second, tolerance)
    if gap is not None:
        _, rec_a = _forward(model, inputs, SEEDS[0], record=True)
        _, rec_b = _forward(model, inputs, SEEDS[1], record=True)
        assert rec_a is not None and rec_b is not None
        key = _first_divergence(rec_a, rec_b, tolerance)
        later = dict(rec_b.records)
        random_keys = frozenset(
            k
            for k, tensors in rec_a.records
            if k in later and _outputs_differ(tensors, later[k], tolerance) is not None
        )
        findings.append(
            _probe_finding(
                NondeterministicEval,
                f"two eval-mode forwards of the same input differ by up to {gap:.3g}{where}",
                subject,
                device,
                key,
            )
        )

    size = batch_size(inputs)
    if size is None:
        skipped.append(
            Skipped(
                subject,
                "batch-independence probe",
                "inputs have no common batch dimension",
                device=device,
            )
        )
        return ProbeOutcome(tuple(findings), tuple(skipped))
    companion_count = max(size - 1, 2)
    runs: list[tuple[str, tuple[Any, ...]]] = [("alone", tuple(x[:1] for x in inputs))]
    for seed in (11, 22):
        batch = tuple(
            torch.cat([x[:1], c]) for x, c in zip(inputs, companions(inputs, companion_count, seed))
        )
        runs.append((f"in a batch of {companion_count + 1}", batch))
    outputs: list[tuple[str, tuple[Any, ...], int, list[Any]]] = []
    failures: list[str] = []
    for label, run_inputs in runs:
        try:
            result, _ = _forward(model, run_inputs, SEEDS[0], record=False)
        except Exception as error:  # e.g. BatchNorm on batch statistics refuses a batch of one
            failures.append(f"{label}: {first_line(error)}")
            continue
        outputs.append((label, run_inputs, run_inputs[0].shape[0], result))
    if len(outputs) < 2:
        skipped.append(
            Skipped(subject, "batch-independence probe", "; ".join(failures), device=device)
        )
        return ProbeOutcome(tuple(findings), tuple(skipped))
    base_label, base_inputs, base_size, base = outputs[0]
    worst: tuple[float, str, tuple[Any, ...], int] | None = None
    for label, run_inputs, run_size, result in outputs[1:]:
        paired = [
            (a[:1], b[:1])
            for a, b in zip(base, result)
            if a.dim() > 0
            and a.shape[0] == base_size
            and b.shape[0] == run_size
            and a.shape[1:] == b.shape[1:]
        ]
        gap = _outputs_differ([a for a, _ in paired], [b for _, b in paired], tolerance)
        if gap is not None and (worst is None or gap > worst[0]):
            worst = (gap, label, run_inputs, run_size)
    if worst is not None:
        gap, label, run_inputs, run_size = worst
        _, rec_base = _forward(model, base_inputs, SEEDS[0], record=True)
        _, rec_run = _forward(model, run_inputs, SEEDS[0], record=True)
        assert rec_base is not None and rec_run is not None
        key = _first_divergence(rec_base, rec_run, tolerance, sizes=(base_size, run_size))
        if key is not None and key in random_keys:
            skipped.append(
                Skipped(
                    subject,
                    "batch-independence probe",
                    f"inconclusive: the first module that differs ({_label(key)}) is "
                    "already random between identical runs",
                    device=device,
                )
            )
        else:
            base_text = (
                "alone"
                if base_label == "alone"
                else f"{base_label} and {label} with other companions"
            )
            compared = f"sample 0 {base_text}" + (f" and {label}" if base_label == "alone" else "")
            findings.append(
                _probe_finding(
                    BatchDependentEval,
                    f"{compared} differ by up to {gap:.3g}{where}",
                    subject,
                    device,
                    key,
                )
            )
    return ProbeOutcome(tuple(findings), tuple(skipped))

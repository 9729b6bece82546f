"""Behavioural probes on the eval-mode model: same input twice, one sample alone versus in a batch.

Each probe that fails is localized with forward hooks to the module whose own code introduces
the difference: the first module (in completion order) whose inputs agree between the two runs
while its outputs differ. A module downstream of the cause sees differing inputs and is never
blamed; where no module qualifies (the cause sits in the root's own forward), the first module
whose output differs is named instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from exportcheck.auditing.module_audit import source_of
from exportcheck.errors import first_line
from exportcheck.numerics.metrics import (
    default_tolerance,
    flatten,
    magnitude,
    measure,
    scaled_tolerance,
    to_numpy,
)
from exportcheck.results.comparison import Tolerance, relative_text
from exportcheck.results.findings import Finding, Location
from exportcheck.results.report import Skipped
from exportcheck.rules import BatchDependentEval, NondeterministicEval, Rule

SEEDS = (1234, 98765)
# The companion that grows the example batch by one sample: the same one the artifact checks
# add for their second batch size, so the batch probe's run of that batch serves them too.
GROWN_BATCH_SEED = 7

# The eval-mode outputs of a batch of inputs under SEEDS[0]; a caller may memoize it.
Forward = Callable[[tuple[Any, ...]], list[Any]]


@dataclass
class _Recorder:
    """Records every module's output tensors, keyed by module path and call number."""

    names: dict[int, str]
    records: list[tuple[tuple[str, int], list[Any]]] = field(default_factory=list)
    inputs: dict[tuple[str, int], list[Any]] = field(default_factory=dict)
    modules: dict[tuple[str, int], Any] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def __call__(self, module: Any, args: Any, output: Any) -> None:
        name = self.names.get(id(module), "?")
        count = self.calls.get(name, 0)
        self.calls[name] = count + 1
        key = (name, count)
        self.inputs[key] = [t.detach().clone() for t in flatten(args)]
        self.modules[key] = module
        self.records.append((key, [t.detach().clone() for t in flatten(output)]))


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


def seeded_forward(model: Any, inputs: Sequence[Any], seed: int = SEEDS[0]) -> list[Any]:
    """The model's output tensors under inference mode with the RNG seeded (and the caller's
    RNG state left as it was): the one eval-mode run the reference and the probes share."""
    return _forward(model, inputs, seed, record=False)[0]


def _tolerance(expected: Any, override: Tolerance | None) -> Tolerance:
    """The command line's tolerance, else the dtype default scaled to the values' magnitude."""
    return override or scaled_tolerance(default_tolerance(expected.dtype), expected)


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
        expected = to_numpy(b)
        metrics = measure(to_numpy(a), expected, _tolerance(expected, override))
        if metrics.mismatched:
            worst = max(worst or 0.0, metrics.max_abs or float("inf"))
    return worst


def _pairs(
    first: list[Any], second: list[Any], sizes: tuple[int, int] | None
) -> list[tuple[Any, Any]]:
    """Tensor pairs to compare; with `sizes`, only sample 0 of tensors batched at those sizes.
    Nested tensors (TransformerEncoder's fast path between its layers) have no shape to pair
    by: they are passed over, and the padded tensors around them decide."""
    strided = [(a, b) for a, b in zip(first, second) if not (a.is_nested or b.is_nested)]
    if not sizes:
        return strided
    return [
        (a[:1], b[:1])
        for a, b in strided
        if a.dim() > 0
        and b.dim() > 0
        and a.shape[0] == sizes[0]
        and b.shape[0] == sizes[1]
        and a.shape[1:] == b.shape[1:]
    ]


def _differ(pairs: list[tuple[Any, Any]], override: Tolerance | None) -> bool:
    return any(_outputs_differ([a], [b], override) is not None for a, b in pairs)


def _first_divergence(
    first: _Recorder,
    second: _Recorder,
    override: Tolerance | None,
    sizes: tuple[int, int] | None = None,
) -> tuple[str, int] | None:
    """The module that introduces a difference: inputs agree, outputs differ (see the module
    docstring); else the first module whose outputs differ."""
    later = dict(second.records)
    first_differing: tuple[str, int] | None = None
    for key, tensors in first.records:
        other = later.get(key)
        if other is None or not _differ(_pairs(tensors, other, sizes), override):
            continue
        first_differing = first_differing or key
        inputs_a, inputs_b = first.inputs.get(key, []), second.inputs.get(key, [])
        if len(inputs_a) == len(inputs_b) and not _differ(
            _pairs(inputs_a, inputs_b, sizes), override
        ):
            return key
    return first_differing


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
            # numpy's statistics, not torch's: a parallel reduction rounds differently with the
            # number of threads, and the same companions must come out wherever they are made,
            # since a forward of them is shared by content.
            values = x.detach().cpu().double().numpy()
            spread = float(values.std(ddof=1)) if x.numel() > 1 else 1.0
            sample = torch.randn(shape, generator=generator) * (spread + 1e-3) + float(
                values.mean()
            )
            made.append(sample.to(device=x.device, dtype=x.dtype))
        elif x.dtype == torch.bool and x.dim() > 0 and x.shape[0] > 0:
            # A boolean input is a mask: random bits make a padding mask no real batch has
            # (not left-aligned), which sends nn.TransformerEncoder off its nested-tensor fast
            # path, and the padded positions it leaves undefined then differ by batch.
            made.append(x[torch.arange(count, device=x.device) % x.shape[0]].clone())
        else:
            low, high = int(x.min()), int(x.max()) + 1
            made.append(
                torch.randint(low, max(high, low + 1), shape, generator=generator).to(
                    device=x.device, dtype=x.dtype
                )
            )
    return tuple(made)


def _probe_finding(
    rule: type[Rule],
    message: str,
    subject: str,
    device: str,
    key: tuple[str, int] | None,
    recorder: _Recorder | None,
) -> Finding:
    label = _label(key)
    module = recorder.modules.get(key) if recorder is not None and key is not None else None
    source_file, source_line = (
        source_of(type(module).forward) if module is not None else (None, None)
    )
    return rule.finding(
        f"{message}; introduced in module: {label or 'unknown'}",
        subject,
        Location(
            runtime=f"pytorch eval ({device})",
            module=key[0] if key and key[0] else None,
            module_type=type(module).__name__ if module is not None else None,
            source_file=source_file,
            source_line=source_line,
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
    forward: Forward | None = None,
) -> ProbeOutcome:
    """Both probes on a model that is already in eval mode. `forward` runs the eval-mode model
    under SEEDS[0]; a memoized one lets the probes share the runs a reference makes anyway."""
    run = forward or (lambda batch: seeded_forward(model, batch))
    findings, random_keys = nondeterminism_probe(model, inputs, subject, device, tolerance, run)
    batch_findings, skipped = batch_independence_probe(
        model, inputs, subject, device, tolerance, random_keys, run
    )
    return ProbeOutcome(tuple(findings + batch_findings), tuple(skipped))


def nondeterminism_probe(
    model: Any,
    inputs: Sequence[Any],
    subject: str,
    device: str,
    tolerance: Tolerance | None,
    forward: Forward | None = None,
) -> tuple[list[Finding], frozenset[tuple[str, int]]]:
    """The same input twice under different seeds; returns the findings and the modules whose
    outputs were random between the runs (the batch probe cannot blame those)."""
    first = (forward or (lambda batch: seeded_forward(model, batch)))(tuple(inputs))
    second = seeded_forward(model, inputs, SEEDS[1])
    gap = _outputs_differ(first, second, tolerance)
    if gap is None:
        return [], frozenset()
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
    finding = _probe_finding(
        NondeterministicEval,
        "two eval-mode forwards of the same input differ by up to "
        f"{relative_text(gap, max(map(magnitude, map(to_numpy, first)), default=0.0))} on {device}",
        subject,
        device,
        key,
        rec_a,
    )
    return [finding], random_keys


def grown_batch(inputs: Sequence[Any]) -> tuple[Any, ...]:
    """The example inputs grown by one companion sample (GROWN_BATCH_SEED)."""
    import torch

    extra = companions(inputs, 1, seed=GROWN_BATCH_SEED)
    return tuple(torch.cat([x, e]) for x, e in zip(inputs, extra))


def _batch_runs(
    model: Any, inputs: Sequence[Any], size: int, forward: Forward
) -> tuple[list[tuple[str, tuple[Any, ...], int, list[Any]]], list[str]]:
    """Sample 0 alone and inside two batches with other companions: (label, inputs, batch size,
    outputs) for each run that ran, and the failures of those that did not.

    The batches are the example batch itself (when it holds more than sample 0) and the example
    batch grown by one companion, which the artifact checks run anyway; a batch of one gets a
    second batch of two fresh companions instead."""
    import torch

    runs: list[tuple[str, tuple[Any, ...]]] = [("alone", tuple(x[:1] for x in inputs))]
    if size > 1:
        runs.append((f"in a batch of {size}", tuple(inputs)))
    runs.append((f"in a batch of {size + 1}", grown_batch(inputs)))
    if size == 1:
        fresh = companions(inputs, 2, seed=22)
        runs.append(("in a batch of 3", tuple(torch.cat([x, c]) for x, c in zip(inputs, fresh))))
    outputs: list[tuple[str, tuple[Any, ...], int, list[Any]]] = []
    failures: list[str] = []
    for label, run_inputs in runs:
        try:
            result = forward(run_inputs)
        except Exception as error:  # e.g. BatchNorm on batch statistics refuses a batch of one
            failures.append(f"{label}: {first_line(error)}")
            continue
        outputs.append((label, run_inputs, run_inputs[0].shape[0], result))
    return outputs, failures


def batch_independence_probe(
    model: Any,
    inputs: Sequence[Any],
    subject: str,
    device: str,
    tolerance: Tolerance | None,
    random_keys: frozenset[tuple[str, int]] = frozenset(),
    forward: Forward | None = None,
) -> tuple[list[Finding], list[Skipped]]:
    """One sample alone versus inside batches with different companions."""
    size = batch_size(inputs)
    if size is None:
        reason = "inputs have no common batch dimension"
        return [], [Skipped(subject, "batch-independence probe", reason, device=device)]
    run = forward or (lambda batch: seeded_forward(model, batch))
    outputs, failures = _batch_runs(model, inputs, size, run)
    if len(outputs) < 2:
        reason = "; ".join(failures)
        return [], [Skipped(subject, "batch-independence probe", reason, device=device)]
    base_label, base_inputs, base_size, base = outputs[0]
    worst: tuple[float, str, tuple[Any, ...], int] | None = None
    for label, run_inputs, run_size, result in outputs[1:]:
        paired = _pairs(base, result, (base_size, run_size))
        gap = _outputs_differ([a for a, _ in paired], [b for _, b in paired], tolerance)
        if gap is not None and (worst is None or gap > worst[0]):
            worst = (gap, label, run_inputs, run_size)
    if worst is None:
        return [], []
    gap, label, run_inputs, run_size = worst
    _, rec_base = _forward(model, base_inputs, SEEDS[0], record=True)
    _, rec_run = _forward(model, run_inputs, SEEDS[0], record=True)
    assert rec_base is not None and rec_run is not None
    key = _first_divergence(rec_base, rec_run, tolerance, sizes=(base_size, run_size))
    if key is not None and key in random_keys:
        reason = (
            f"inconclusive: the first module that differs ({_label(key)}) is already random "
            "between identical runs"
        )
        return [], [Skipped(subject, "batch-independence probe", reason, device=device)]
    base_text = (
        "alone" if base_label == "alone" else f"{base_label} and {label} with other companions"
    )
    compared = f"sample 0 {base_text}" + (f" and {label}" if base_label == "alone" else "")
    finding = _probe_finding(
        BatchDependentEval,
        f"{compared} differ by up to "
        f"{relative_text(gap, max(map(magnitude, map(to_numpy, base)), default=0.0))} on {device}",
        subject,
        device,
        key,
        rec_base,
    )
    return [finding], []

"""How many times `validate` runs the user's model: each batch once, the float64 model only when
it could change a verdict, the training-mode attribution once per model. Counted by a forward
hook on the model (removed afterwards), as a user could."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

import exportcheck
from exportcheck.auditing.modes import preserved
from exportcheck.comparison.reference import ModelRun, Tolerances, compare_outputs, quiet_progress
from exportcheck.comparison.runtimes import pytorch_runner
from tests.conftest import build_sample


@contextlib.contextmanager
def counted_forwards(model: nn.Module) -> Iterator[Counter[str]]:
    """Root-module calls by kind: an exporter tracing, training mode (the attribution), eval."""
    counts: Counter[str] = Counter()

    def hook(module: nn.Module, args: tuple, output: object) -> None:
        if torch.jit.is_tracing() or torch.compiler.is_compiling():
            counts["trace"] += 1
        elif module.training:
            counts["training"] += 1
        else:
            counts["eval"] += 1

    handle = model.register_forward_hook(hook)
    try:
        yield counts
    finally:
        handle.remove()


def test_each_batch_runs_once_for_reference_probes_and_second_batch():
    """A batch of 4: the example batch (the reference, the determinism probe's first seed and
    the batch probe's own batch), the second seed, sample 0 alone, and the batch grown by one
    (the batch probe's, and the artifact's second batch size). No float64 model: every
    comparison passes at the default tolerance."""
    model, inputs = build_sample("cnn")
    with counted_forwards(model) as counts:
        report = exportcheck.validate(model, inputs, formats=["torchscript-trace"], devices="cpu")
    assert report.ok and report.comparisons
    assert {c.batch_size for c in report.comparisons} == {4, 5}
    assert counts == Counter(eval=4, trace=1)


def test_a_batch_of_one_is_its_own_sample_alone():
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    inputs = (torch.randn(1, 6),)
    with counted_forwards(model) as counts:
        report = exportcheck.validate(model, inputs, formats=["torchscript-trace"], devices="cpu")
    assert report.ok
    # the example batch (= sample 0 alone), the second seed, batches of 2 and 3
    assert counts == Counter(eval=4, trace=1)


def test_the_float64_model_runs_only_for_a_comparison_it_could_decide():
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    inputs = (torch.randn(2, 6),)
    ctx = ModelRun(model, inputs, "m", Tolerances(), False, quiet_progress)
    runner = pytorch_runner(model, "cpu")
    with preserved(model):
        model.eval()
        expected = ctx.reference("cpu", inputs)

        def compare(offset: float):
            actual = [expected[0] + np.float32(offset)]
            [comparison] = compare_outputs(
                ctx, runner, actual, expected, artifact=None, artifact_format="t", batch=2
            )
            return comparison

        assert compare(0.0).passed and ctx.forward_passes["float64"] == 0
        # far beyond what any measured noise may widen the tolerance to
        assert not compare(0.5).passed and ctx.forward_passes["float64"] == 0
        # just above the float32 default: only the model's noise can tell
        near = compare(5e-5)
        assert ctx.forward_passes["float64"] == 1 and near.tolerance.noise is not None
        assert not near.passed  # a Linear's noise (~1e-7) widens nothing this far
        compare(5e-5)
    assert ctx.forward_passes == Counter(eval=1, float64=1)


class ExportsShifted(nn.Module):
    """Computes something else while an exporter traces it: every artifact mismatches."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.bn = nn.BatchNorm1d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.fc(x))
        return y + 1 if torch.jit.is_tracing() else y


def test_the_training_mode_attribution_runs_once_per_model():
    model = ExportsShifted().eval()
    inputs = (torch.randn(3, 4),)
    with counted_forwards(model) as counts:
        report = exportcheck.validate(
            model,
            inputs,
            formats=["onnx-legacy", "torchscript-trace"],
            devices="cpu",
            runtimes=["onnxruntime", "torch"],
        )
    mismatches = [f for f in report.findings if f.rule == "output-mismatch"]
    assert len(mismatches) == 3  # two ONNX Runtime levels and torch, each attributed
    assert counts["training"] == 1


def test_companions_come_out_the_same_with_any_thread_count():
    """The batch probe and the artifact checks (on another thread, with fewer torch threads)
    make the same grown batch; its forward is shared only if the bytes agree."""
    from exportcheck.auditing.probes import companions

    x = (torch.randn(1, 256, 512) * 3 + 1,)  # large enough for torch to reduce in parallel
    previous = torch.get_num_threads()
    try:
        made = []
        for threads in (1, max(2, previous)):
            torch.set_num_threads(threads)
            made.append(companions(x, 2, seed=7)[0])
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(made[0], made[1])

"""A runtime's refusal placed at the node it names: the node's module and source line, what the
node computes where that explains the refusal, and the fix that calls for, proved on tract."""

from __future__ import annotations

import numpy as np
import pytest

from exportcheck.comparison.runtimes import get_runtime
from tests.comparison.test_runtimes import needs, subject_of
from tests.conftest import SAMPLES

WEIGHT_STANDARDIZATION = """
import torch
import torch.nn.functional as F
from torch import nn


class StdConv(nn.Conv2d):
    '''timm's StdConv2d: the weight standardized by a training-mode batch norm over itself.'''

    def forward(self, x):
        weight = F.batch_norm(
            self.weight.reshape(1, self.out_channels, -1), None, None, training=True, eps=1e-6
        ).reshape_as(self.weight)
        return F.conv2d(x, weight, self.bias, self.stride, self.padding)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = StdConv(3, 8, 3, padding=1)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        return self.head(torch.relu(self.stem(x)).mean((2, 3)))


def build():
    torch.manual_seed(0)
    return Net().eval(), (torch.randn(2, 3, 8, 8),)
"""


@needs("tract")
def test_a_refused_weight_standardization_is_placed_and_fixed_by_folding(tmp_path):
    from exportcheck.pipeline.validation import validate_targets
    from exportcheck.reporters.text import render_text

    target = tmp_path / "stdconv.py"
    target.write_text(WEIGHT_STANDARDIZATION)
    report = validate_targets(
        [f"{target}:build"],
        formats=("onnx", "onnx-legacy"),
        devices="cpu",
        runtimes=("onnxruntime", "tract"),
        probes=False,
        out_dir=tmp_path / "artifacts",
    )
    (problem,) = report.problems
    assert problem.rule == "runtime-refusal" and not problem.explained
    # The dynamo exporter's graph computes the standardization in nodes tract folds itself;
    # the legacy exporter's training-mode BatchNormalization (three outputs) it refuses.
    assert problem.runtimes == ("tract/cpu",) and len(problem.artifacts) == 1
    refusal = problem.cause
    assert refusal.location.runtime == "onnx-legacy on tract/cpu"
    assert (refusal.location.node, refusal.location.op_type, refusal.location.module) == (
        "/stem/BatchNormalization",
        "BatchNormalization",
        "stem",
    )
    assert "The BatchNormalization it names normalizes values derived from parameters" in (
        refusal.message
    )
    text = render_text(report, width=None)
    assert "stdconv.py: warning: EC304 runtime-refusal [stem] tract refuses" in text
    fix = next(line for line in text.splitlines() if line.startswith("    fix: "))
    assert fix.startswith("    fix: Fold the artifact's constants before deploying it")

    # The fix, as it says: ONNX Runtime's offline optimization folds the batch norm into
    # weights, and tract runs the folded file and matches the model.
    import onnxruntime as ort
    import torch

    from exportcheck.targets.python_targets import build_target

    built = build_target(f"{target}:build")
    model, (x,) = built.model, built.inputs
    for exported in sorted((tmp_path / "artifacts").glob("*.onnx")):
        folded = tmp_path / f"folded-{exported.name}"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(folded)
        ort.InferenceSession(str(exported), options, providers=["CPUExecutionProvider"])
        runner = get_runtime("tract").load(str(folded), "onnx", "cpu", None, None)
        with torch.no_grad():
            expected = model(x).numpy()
        np.testing.assert_allclose(runner.run((x,))[0], expected, rtol=1e-4, atol=1e-5)


@needs("tract")
def test_tract_names_the_node_it_refuses(sample_exports):
    from exportcheck.comparison.runtimes import RuntimeRefused

    path = sample_exports[("bad_functional_dropout", "eval", "onnx-legacy")]
    tract = get_runtime("tract")
    with pytest.raises(RuntimeRefused) as refused:
        tract.load(path, "onnx", "cpu", None, None).run((np.zeros((2, 16), np.float32),))
    assert tract.refused_node(str(refused.value)) == "/block/Dropout"
    assert tract.refused_node("Operator can not be made a TypedOp.") is None


@needs("openvino")
def test_openvino_names_the_value_of_the_node_it_refuses(sample_exports):
    from exportcheck.comparison.runtimes import RuntimeRefused

    path = sample_exports[("bad_functional_dropout", "eval", "onnx-legacy")]
    openvino = get_runtime("openvino")
    with pytest.raises(RuntimeRefused) as refused:
        openvino.load(path, "onnx", "cpu", "CPU", None)
    assert openvino.refused_node(str(refused.value)) == "/block/Dropout_output_0"


@needs("openvino")
def test_a_refusal_of_a_flagged_node_is_evidence_of_that_nodes_finding(demo_report):
    """OpenVINO names the training Dropout's output; the refusal is placed at that node, the
    node EC101 flags in the same artifact, and is evidence of that problem."""
    subject = subject_of("bad_functional_dropout")
    refusals = [
        f
        for f in demo_report.findings
        if f.subject == subject
        and f.rule == "runtime-refusal"
        and f.location.runtime == "onnx-legacy on openvino/CPU/cpu"
    ]
    assert [f.location.node for f in refusals] == ["/block/Dropout"]
    assert refusals[0].location.op_type == "Dropout" and refusals[0].location.module == "block"
    problem = next(p for p in demo_report.problems if refusals[0] in p.evidence)
    assert problem.rule == "training-dropout"
    flagged = [f for f in problem.members if f.rule == "training-dropout"]
    assert any(
        (f.location.node, f.location.artifact) == ("/block/Dropout", refusals[0].location.artifact)
        for f in flagged
    )
    source = (SAMPLES / "bad_functional_dropout.py").read_text().splitlines()
    line = next(n for n, text in enumerate(source, 1) if "return F.dropout(" in text)
    assert problem.source == (str(SAMPLES / "bad_functional_dropout.py"), line)

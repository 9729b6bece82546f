"""`exportcheck compare AFTER --against BEFORE.onnx` after the real optimizers: onnxslim and
onnxscript's optimizer."""

from __future__ import annotations

import json
import warnings

import onnx
import onnxscript
import onnxslim
import torch
from onnxscript.rewriter import rewrite

from tests.cli.processes import exportcheck as run_cli
from tests.conftest import build_sample
from tests.repair.models import ConvBnDropout, DropoutInCond, StdConvNet, built, image


def _export(model, inputs, path, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, inputs, str(path), **options)
    return path


def _compare(after, before):
    done = run_cli("compare", after, "--against", before, "-f", "json")
    return done.returncode, json.loads(done.stdout)


def test_onnxslim_erasing_training_dropouts_is_named_and_moves_toward_eval(
    sample_exports, tmp_path
):
    before = sample_exports[("transformer", "train", "onnx")]
    after = tmp_path / "slim.onnx"
    onnx.save(onnxslim.slim(onnx.load(before)), str(after))
    code, data = _compare(after, before)
    dropouts = [n.name for n in onnx.load(before).graph.node if n.op_type == "Dropout"]
    assert sorted(c["node"] for c in data["changes"]) == sorted(dropouts)
    assert all(c["change"] == "disappeared" for c in data["changes"])
    assert all(c["effect"] == "moved toward eval semantics" for c in data["changes"])
    assert code == 0 and data["ok"]
    # BEFORE as it is drops at random with the runtime's optimizations off
    assert not all(c["passed"] for c in data["raw_comparisons"])


def test_a_before_with_external_data_is_proven_in_eval_semantics_and_left_untouched(tmp_path):
    """torch.onnx.export's default for the sample transformer keeps its weights in a side
    file. The repaired forms of both files are run from memory, their weights read from
    beside each file: the proof runs, and nothing is written next to the user's files."""
    model, inputs = build_sample("transformer")
    before = _export(model.train(), inputs, tmp_path / "train.onnx", dynamo=True)
    assert (tmp_path / "train.onnx.data").is_file()
    after = tmp_path / "slim.onnx"
    onnx.save(onnxslim.slim(onnx.load(str(before))), str(after))
    listed = sorted(p.name for p in tmp_path.iterdir())
    code, data = _compare(after, before)
    assert data["comparisons"] and all(c["passed"] for c in data["comparisons"])
    assert code == 0 and data["ok"]
    assert sorted(p.name for p in tmp_path.iterdir()) == listed


def test_onnxslim_leaves_dropouts_inside_if_branches(tmp_path):
    before = _export(DropoutInCond().train(), (image(),), tmp_path / "cond.onnx", dynamo=True)
    after = tmp_path / "slim.onnx"
    onnx.save(onnxslim.slim(onnx.load(str(before))), str(after))
    code, data = _compare(after, before)
    assert code == 1 and not data["ok"]
    assert len(data["remaining"]) == 2
    assert all(n["scope"] != "main" for n in data["remaining"])


def test_onnxscript_fusing_a_training_batchnorm_into_its_conv_moves_toward_eval(tmp_path):
    model = built(ConvBnDropout, training=True)
    model.drop.p = 0.0  # only the BatchNorm is in question here
    before = _export(
        model,
        (image(),),
        tmp_path / "train.onnx",
        dynamo=False,
        training=torch.onnx.TrainingMode.PRESERVE,
    )
    after = tmp_path / "optimized.onnx"
    onnx.save(onnxscript.optimizer.optimize(onnx.load(str(before))), str(after))
    code, data = _compare(after, before)
    (change,) = [c for c in data["changes"] if c["op"] == "BatchNormalization"]
    assert change["change"].startswith("disappeared: fused into Conv")
    assert change["effect"] == "moved toward eval semantics"
    assert all(c["passed"] for c in data["comparisons"])


def test_onnxscript_on_stdconv_keeps_the_intended_batch_statistics(tmp_path):
    """Measured, not assumed: onnxscript 0.7.2's optimize() and rewrite() leave the legacy
    export's weight-standardizing BatchNormalization (training_mode=1, three outputs) in place,
    so compare finds no mode change and equal outputs."""
    model = built(StdConvNet, training=False)
    before = _export(model, (image(),), tmp_path / "std.onnx", dynamo=False)
    for name, optimizer in (("optimize", onnxscript.optimizer.optimize), ("rewrite", rewrite)):
        after = tmp_path / f"{name}.onnx"
        onnx.save(optimizer(onnx.load(str(before))), str(after))
        code, data = _compare(after, before)
        assert not any(c["breaks"] for c in data["changes"]), data["changes"]
        assert code == 0 and data["ok"]


def test_onnxslim_folding_weight_standardization_keeps_the_intended_statistics(tmp_path):
    """onnxslim 0.1.98 does remove the legacy export's weight-standardizing BatchNormalizations:
    it folds them, with the Reshape after them, into constant weights. That is sound (the
    statistics are of the weights, not of the batch), and the outputs show it, so the change is
    reported as kept, not broken."""
    model = built(StdConvNet, training=False)
    before = _export(model, (image(),), tmp_path / "std.onnx", dynamo=False)
    after = tmp_path / "slim.onnx"
    onnx.save(onnxslim.slim(onnx.load(str(before))), str(after))
    assert not any(n.op_type == "BatchNormalization" for n in onnx.load(str(after)).graph.node)
    code, data = _compare(after, before)
    norms = [c for c in data["changes"] if c["op"] == "BatchNormalization"]
    assert len(norms) == 2 and all(c["change"] == "disappeared" for c in norms)
    assert all(c["effect"].startswith("kept intended batch statistics") for c in norms)
    assert not any(c["breaks"] for c in data["changes"])
    assert code == 0 and data["ok"]


def test_a_fused_intended_batchnorm_is_reported_as_broken(tmp_path):
    """What compare says when an optimizer does fold away weight standardization: AFTER here is
    BEFORE with the intended BatchNormalization removed (its input passed through), the
    change an optimizer that ignores training_mode makes."""
    model = built(StdConvNet, training=False)
    before = _export(model, (image(),), tmp_path / "std.onnx", dynamo=False)
    proto = onnx.load(str(before))
    graph = proto.graph
    norm = next(n for n in graph.node if n.op_type == "BatchNormalization")
    graph.node.remove(norm)
    for node in graph.node:
        for i, value in enumerate(node.input):
            if value == norm.output[0]:
                node.input[i] = norm.input[0]
    after = tmp_path / "folded.onnx"
    onnx.save(proto, str(after))
    code, data = _compare(after, before)
    (change,) = data["changes"]
    assert change["effect"] == "broke intended batch statistics" and change["breaks"]
    assert code == 1 and not data["comparisons"][0]["passed"]


def test_artifact_reference_formats_are_text_and_json(sample_exports, tmp_path):
    before = sample_exports[("cnn", "train", "onnx")]
    done = run_cli("compare", before, "--against", before, "-f", "sarif")
    assert done.returncode == 2 and "--format" in done.stderr
    done = run_cli("compare", before, "--against", before)
    assert done.returncode == 1  # a file compared with itself still has its training Dropout
    assert "STILL  Dropout node_native_dropout__1" in done.stdout

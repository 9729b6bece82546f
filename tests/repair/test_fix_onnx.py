"""`exportcheck fix` on real ONNX exports: the repair, the diff, the file it writes, the proof."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import exportcheck
from exportcheck.export.exporters import Exporter
from exportcheck.results.repair import Action
from tests.cli.processes import exportcheck as run_cli
from tests.conftest import SAMPLES, build_sample
from tests.repair.models import (
    ConvBnDropout,
    DropoutInCond,
    InstanceNormNet,
    StdConvNet,
    batchnorm_statistics,
    built,
    image,
)

LEVELS = {"disable_all", "default"}


def export_onnx(model: torch.nn.Module, inputs: tuple, path: Path, **options) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, inputs, str(path), **options)
    return path


def digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def compared_levels(result) -> set[str]:
    return {c.optimization for step in result.proof for c in step.comparisons if c.optimization}


@pytest.mark.parametrize("sample", ["cnn", "transformer"])
def test_dynamo_train_export_fixed_passes_comparison_on_both_ort_levels(
    sample_exports, tmp_path, sample
):
    source = sample_exports[(sample, "train", "onnx")]
    fixed = tmp_path / "fixed.onnx"
    done = run_cli(
        "fix", source, "-o", fixed, "--against", f"{SAMPLES / sample}.py:build", "-f", "json"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(done.stdout)
    assert data["proof_holds"]
    changed = [n for n in data["nodes"] if n["action"] == "changed"]
    assert changed and all(n["op"] == "Dropout" for n in changed)
    matched = next(s for s in data["proof"] if s["check"] == "matches the eval-mode model")
    on_ort = [c for c in matched["comparisons"] if c["runtime"] == "onnxruntime"]
    assert {c["optimization_level"] for c in on_ort} == LEVELS
    assert all(c["passed"] for c in matched["comparisons"])  # on every installed runtime


@pytest.mark.parametrize("sample", ["cnn", "transformer"])
def test_legacy_preserve_export_fixed_matches_the_model_it_was_traced_from(tmp_path, sample):
    """TrainingMode.PRESERVE traces the model in training mode, which updates its BatchNorm
    buffers: the file holds the updated statistics, as the model does after the export."""
    model, inputs = build_sample(sample)
    model.train()
    source = Exporter(model, inputs).export("onnx-legacy", str(tmp_path / "train.onnx")).path
    result = exportcheck.fix(
        source, tmp_path / "fixed.onnx", against=model, example_inputs=inputs, devices="cpu"
    )
    assert result.proof_holds, [(s.check, s.detail) for s in result.proof]
    assert result.changed
    assert compared_levels(result) == LEVELS
    before = exportcheck.inspect([source])
    assert {"training-dropout"} <= {f.rule for f in before.findings}


def test_fixed_file_keeps_opset_metadata_and_names_and_leaves_the_input(sample_exports, tmp_path):
    source = sample_exports[("cnn", "train", "onnx-legacy")]
    original_digest = digest(source)
    fixed = tmp_path / "fixed.onnx"
    result = exportcheck.fix(source, fixed)
    assert result.proof_holds
    assert digest(source) == original_digest
    original, repaired = onnx.load(source), onnx.load(str(fixed))
    onnx.checker.check_model(repaired)
    assert list(repaired.opset_import) == list(original.opset_import)
    assert repaired.ir_version == original.ir_version
    assert repaired.producer_name == original.producer_name
    assert list(repaired.metadata_props) == list(original.metadata_props)
    assert repaired.graph.name == original.graph.name
    assert [n.name for n in repaired.graph.node] == [n.name for n in original.graph.node]
    assert [i.name for i in repaired.graph.input] == [i.name for i in original.graph.input]
    assert [o.name for o in repaired.graph.output] == [o.name for o in original.graph.output]
    norms = [n for n in repaired.graph.node if n.op_type == "BatchNormalization"]
    assert norms and all(len(n.output) == 1 for n in norms)
    assert all(a.i == 0 for n in norms for a in n.attribute if a.name == "training_mode")


def test_standalone_proof_is_deterministic_batch_independent_and_reports_the_difference(
    sample_exports, tmp_path
):
    result = exportcheck.fix(sample_exports[("transformer", "train", "onnx")], tmp_path / "f.onnx")
    steps = {s.check: s for s in result.proof}
    assert result.proof_holds
    assert steps["deterministic across seeds"].comparisons
    assert steps["independent of batch companions"].comparisons
    difference = steps["difference from the original"]
    assert max(c.metrics.max_abs for c in difference.comparisons) > 0
    assert "training-mode operations" in difference.detail


def test_opset_13_batchnorm_in_training_by_its_output_count(tmp_path):
    model, x = built(ConvBnDropout, training=True), image()
    source = export_onnx(
        model,
        (x,),
        tmp_path / "op13.onnx",
        dynamo=False,
        opset_version=13,
        training=torch.onnx.TrainingMode.PRESERVE,
    )
    norm = next(n for n in onnx.load(str(source)).graph.node if n.op_type == "BatchNormalization")
    # no training_mode attribute before opset 14: the output count says training
    assert len(norm.output) == 5 and "training_mode" not in {a.name for a in norm.attribute}
    result = exportcheck.fix(source, tmp_path / "fixed.onnx", against=model, example_inputs=(x,))
    assert result.proof_holds, [(s.check, s.detail) for s in result.proof]
    line = next(n for n in result.nodes if n.op == "BatchNormalization")
    assert line.action is Action.CHANGED and "5 outputs" in line.reason
    assert onnx.load(str(tmp_path / "fixed.onnx")).opset_import[0].version == 13


def test_dropouts_inside_if_branches_are_repaired(tmp_path):
    model, x = DropoutInCond().train(), image()
    source = export_onnx(model, (x,), tmp_path / "cond.onnx", dynamo=True)
    result = exportcheck.fix(source, tmp_path / "fixed.onnx", against=model, example_inputs=(x,))
    changed = result.changed
    assert len(changed) == 2 and all(n.scope != "main" for n in changed)
    assert result.proof_holds, [(s.check, s.detail) for s in result.proof]


def test_instance_norm_exported_correctly_is_left_unchanged_and_says_why(tmp_path):
    model, x = built(InstanceNormNet, training=False), image()
    for exporter, dynamo in (("dynamo", True), ("legacy", False)):
        source = export_onnx(model, (x,), tmp_path / f"{exporter}.onnx", dynamo=dynamo)
        result = exportcheck.fix(
            source, tmp_path / f"{exporter}-fixed.onnx", against=model, example_inputs=(x,)
        )
        assert not result.changed and not result.refused
        assert "nothing" in result.note
        assert result.proof_holds, [(s.check, s.detail) for s in result.proof]


def test_stdconv_weight_standardization_is_intended_and_left_alone(tmp_path):
    """timm's StdConv2d normalizes its weight with batch statistics in every mode: the legacy
    exporter keeps a training_mode=1 BatchNormalization over the weight, which is correct."""
    model, x = built(StdConvNet, training=False), image()
    source = export_onnx(model, (x,), tmp_path / "std.onnx", dynamo=False)
    result = exportcheck.fix(source, tmp_path / "fixed.onnx", against=model, example_inputs=(x,))
    intended = result.with_action(Action.INTENDED)
    assert len(intended) == 2 and not result.changed
    assert all("weight standardization" in n.reason for n in intended)
    assert "nothing changed" in result.note
    assert result.proof_holds, [(s.check, s.detail) for s in result.proof]


def _graph(nodes, inputs, outputs, initializers, opset=15) -> onnx.ModelProto:
    graph = onnx.helper.make_graph(nodes, "g", inputs, outputs, initializers)
    return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])


def _value(name, shape, elem=onnx.TensorProto.FLOAT):
    return onnx.helper.make_tensor_value_info(name, elem, shape)


def test_mc_dropout_with_a_graph_input_mode_is_left_as_it_is(tmp_path):
    """No exporter makes a Dropout whose training_mode is a graph input (torch's dropout takes a
    Python bool), so this graph is built by hand."""
    ratio = onnx.numpy_helper.from_array(np.array(0.5, np.float32), "ratio")
    model = _graph(
        [onnx.helper.make_node("Dropout", ["x", "ratio", "mc"], ["y"], name="mc_dropout")],
        [_value("x", [2, 8]), _value("mc", [], onnx.TensorProto.BOOL)],
        [_value("y", [2, 8])],
        [ratio],
    )
    source = tmp_path / "mc.onnx"
    onnx.save(model, str(source))
    result = exportcheck.fix(source, tmp_path / "fixed.onnx")
    (line,) = result.nodes
    assert line.action is Action.INTENDED and "graph input 'mc'" in line.reason
    assert result.proof_holds, [(s.check, s.detail) for s in result.proof]
    assert list(onnx.load(str(tmp_path / "fixed.onnx")).graph.node[0].input) == ["x", "ratio", "mc"]


def _training_batchnorm(extra_consumer: bool) -> onnx.ModelProto:
    """BatchNormalization in training mode whose running-statistics outputs are graph outputs
    (torch.export's functionalized buffer update), or read by another node."""
    stats = batchnorm_statistics()
    tensors = [onnx.numpy_helper.from_array(v, k) for k, v in stats.items()]
    nodes = [
        onnx.helper.make_node(
            "BatchNormalization",
            ["x", "scale", "bias", "mean", "var"],
            ["y", "new_mean", "new_var"],
            name="bn",
            training_mode=1,
        )
    ]
    outputs = [_value("y", [3, 4]), _value("new_var", [4])]
    if extra_consumer:
        nodes.append(onnx.helper.make_node("Neg", ["new_mean"], ["negated"], name="reader"))
        outputs.append(_value("negated", [4]))
    else:
        outputs.append(_value("new_mean", [4]))
    return _graph(nodes, [_value("x", [3, 4])], outputs, tensors), stats


def test_running_statistics_outputs_are_passed_through_unchanged(tmp_path):
    model, stats = _training_batchnorm(extra_consumer=False)
    source = tmp_path / "bn.onnx"
    onnx.save(model, str(source))
    result = exportcheck.fix(source, tmp_path / "fixed.onnx")
    (line,) = result.nodes
    assert line.action is Action.CHANGED and "pass the stored ones through" in line.reason
    assert result.proof_holds, [(s.check, s.detail) for s in result.proof]
    session = ort.InferenceSession(str(tmp_path / "fixed.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
    y, new_var, new_mean = session.run(["y", "new_var", "new_mean"], {"x": x})
    eval_mode = stats["scale"] * (x - stats["mean"]) / np.sqrt(stats["var"] + 1e-5) + stats["bias"]
    np.testing.assert_allclose(y, eval_mode, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(new_mean, stats["mean"].astype(np.float32))
    np.testing.assert_array_equal(new_var, stats["var"].astype(np.float32))


def test_consumed_running_statistics_output_is_refused_and_the_proof_fails(tmp_path):
    model, _ = _training_batchnorm(extra_consumer=True)
    source = tmp_path / "bn.onnx"
    onnx.save(model, str(source))
    done = run_cli("fix", source, "-o", tmp_path / "fixed.onnx")
    assert done.returncode == 1
    assert "refused (1)" in done.stdout and "read by reader" in done.stdout
    assert "does not hold" in done.stdout


def test_track_running_stats_false_is_refused(sample_exports, tmp_path):
    source = sample_exports[("bad_batchnorm_no_running_stats", "train", "onnx-legacy")]
    result = exportcheck.fix(source, tmp_path / "fixed.onnx")
    (line,) = result.nodes
    assert line.action is Action.REFUSED and "not stored running statistics" in line.reason
    assert not result.proof_holds and result.exit_code() == 1


def test_external_data_stays_external_and_is_never_copied(sample_exports, tmp_path):
    model = onnx.load(sample_exports[("cnn", "train", "onnx-legacy")])
    source = tmp_path / "model.onnx"
    onnx.save(
        model, str(source), save_as_external_data=True, location="weights.bin", size_threshold=0
    )
    weights = tmp_path / "weights.bin"
    weights_digest = digest(weights)
    fixed = tmp_path / "fixed.onnx"
    result = exportcheck.fix(source, fixed)
    assert result.proof_holds
    assert digest(weights) == weights_digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fixed.onnx", "model.onnx", "weights.bin"]
    repaired = onnx.load(str(fixed), load_external_data=False)
    external = [
        t for t in repaired.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL
    ]
    assert external and {
        e.value for t in external for e in t.external_data if e.key == "location"
    } == {"weights.bin"}
    assert fixed.stat().st_size < weights.stat().st_size


def test_output_elsewhere_than_external_data_is_refused(tmp_path, sample_exports):
    model = onnx.load(sample_exports[("cnn", "train", "onnx-legacy")])
    source = tmp_path / "model.onnx"
    onnx.save(model, str(source), save_as_external_data=True, location="w.bin", size_threshold=0)
    elsewhere = tmp_path / "out"
    elsewhere.mkdir()
    done = run_cli("fix", source, "-o", elsewhere / "fixed.onnx")
    assert done.returncode == 2
    assert "must be in the input's folder" in done.stderr
    assert not list(elsewhere.iterdir())


def test_fix_never_writes_over_its_input(sample_exports):
    source = sample_exports[("cnn", "train", "onnx")]
    before = digest(source)
    done = run_cli("fix", source, "-o", source)
    assert done.returncode == 2 and "refusing to overwrite" in done.stderr
    assert digest(source) == before

"""`inspect` on real exports of the sample models, in train and in eval mode, every format."""

from __future__ import annotations

import pytest

from exportcheck.export.exporters import FORMATS
from exportcheck.graph_checks import inspect_artifact
from exportcheck.results.findings import Severity
from tests.conftest import SAMPLE_NAMES, sample_expected

CASES = [(name, fmt) for name in SAMPLE_NAMES for fmt in FORMATS]


def error_rules(path: str) -> set[str]:
    return {f.rule for f in inspect_artifact(path) if f.severity is Severity.ERROR}


@pytest.mark.parametrize(("name", "fmt"), CASES)
def test_train_mode_exports_report_declared_rules(sample_exports, name, fmt):
    declared = sample_expected(name)["train_exports"].get(fmt, [])
    path = sample_exports[(name, "train", fmt)]
    if declared == "export-fails":
        assert path is None, f"{fmt} now exports train-mode {name}: update its EXPECTED"
        return
    assert path is not None, f"{fmt} export of train-mode {name} failed"
    assert error_rules(path) == set(declared)


@pytest.mark.parametrize(("name", "fmt"), CASES)
def test_eval_mode_exports_of_clean_models_have_no_errors(sample_exports, name, fmt):
    if sample_expected(name)["validate"]:
        pytest.skip("known-bad model")
    path = sample_exports[(name, "eval", fmt)]
    assert path is not None
    assert error_rules(path) == set()


def test_findings_name_module_scope_node_and_op(sample_exports):
    findings = inspect_artifact(sample_exports[("cnn", "train", "onnx-legacy")])
    batchnorms = [f for f in findings if f.rule == "training-batchnorm"]
    assert {f.location.module for f in batchnorms} == {"features.1", "features.4"}
    for finding in batchnorms:
        assert finding.location.scope == "main"
        assert finding.location.op_type == "BatchNormalization"
        assert finding.location.node.startswith("/features/")
    dropout = next(f for f in findings if f.rule == "training-dropout")
    assert dropout.location.module == "dropout"
    assert dropout.location.node == "/dropout/Dropout"


def test_dynamo_exporter_keeps_dropout_but_silently_fixes_batchnorm(sample_exports):
    """Measured with torch 2.13: train-mode Dropout stays `Dropout(training_mode=True)`,
    train-mode BatchNorm becomes inference BatchNorm."""
    import onnx

    path = sample_exports[("cnn", "train", "onnx")]
    model = onnx.load(path, load_external_data=False)
    ops = [n.op_type for n in model.graph.node]
    assert "Dropout" in ops
    assert error_rules(path) == {"training-dropout"}
    findings = inspect_artifact(path)
    assert all(f.rule != "training-batchnorm" for f in findings)


@pytest.mark.parametrize("fmt", ["onnx", "onnx-legacy"])
def test_functional_dropout_in_eval_mode_exports_a_training_dropout(sample_exports, fmt):
    path = sample_exports[("bad_functional_dropout", "eval", fmt)]
    findings = [f for f in inspect_artifact(path) if f.rule == "training-dropout"]
    assert [f.location.op_type for f in findings] == ["Dropout"]
    assert findings[0].location.module == "block"


def test_traced_module_keeps_training_constants_after_eval(sample_exports):
    """`.eval()` on a traced train-mode module flips the flag, not the baked constants."""
    import torch

    from exportcheck.readers.torchscript import read_torchscript

    traced = torch.jit.load(sample_exports[("cnn", "train", "torchscript-trace")])
    traced.eval()
    graph = traced.inlined_graph
    dropout = next(n for n in graph.nodes() if n.kind() == "aten::dropout")
    assert dropout.namedInput("train").toIValue() is True
    view = read_torchscript(
        sample_exports[("cnn", "train", "torchscript-trace")], frozenset({"aten::batch_norm"})
    )
    batch_norm = view.nodes[0]
    assert batch_norm.arg("training").value is True
    assert batch_norm.arg("cudnn_enabled") is not None


def test_scripted_training_argument_resolves_from_saved_flags(sample_exports):
    from exportcheck.readers.torchscript import read_torchscript

    for mode, expected in (("train", True), ("eval", False)):
        view = read_torchscript(
            sample_exports[("cnn", mode, "torchscript-script")], frozenset({"aten::dropout"})
        )
        [dropout] = view.nodes
        assert dropout.arg("train").value is expected
        assert dropout.arg("train").source == "module flag dropout.training"
        assert dropout.module == "dropout"


def test_modulelist_paths_are_recovered_from_inlined_hierarchy(sample_exports):
    findings = inspect_artifact(sample_exports[("transformer", "train", "torchscript-trace")])
    modules = {f.location.module for f in findings if f.rule == "training-dropout"}
    assert "encoder.layers.0.dropout1" in modules


def test_exported_program_reports_buffers_and_args(sample_exports):
    findings = inspect_artifact(sample_exports[("bad_train_override", "train", "exported-program")])
    rules = {(f.rule, f.location.module) for f in findings}
    assert ("training-batchnorm", "body.norm") in rules
    assert ("training-dropout", "body.drop") in rules


def test_lstm_dropout_between_layers_is_found(sample_exports):
    findings = inspect_artifact(sample_exports[("lstm", "train", "torchscript-trace")])
    assert any(
        f.rule == "training-dropout" and f.location.op_type == "aten::lstm" for f in findings
    )

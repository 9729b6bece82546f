"""Hand-built ONNX graphs: each isolates one thing the ONNX reader and the graph rules must get right."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import AttributeProto, ModelProto, NodeProto, TensorProto, helper, numpy_helper

from exportcheck.errors import UnreadableArtifactError, UnsafeExternalDataError
from exportcheck.graph_checks import inspect_artifact
from exportcheck.results.findings import Finding, Severity

ROOT = Path(__file__).resolve().parents[2]
OPSET = 18
# Each level of If nesting costs three protobuf message levels (Node, Attribute, Graph); protobuf
# refuses more than 100, so 31 levels is the deepest ONNX file any protobuf-based tool can parse.
DEEPEST_PARSEABLE_IF = 31


# --- model builders ---------------------------------------------------------------------------


def value_info(name: str, elem: int = TensorProto.FLOAT, shape: Sequence[int] = (2,)):
    return helper.make_tensor_value_info(name, elem, list(shape))


def bool_tensor(name: str, value: bool) -> TensorProto:
    return numpy_helper.from_array(np.array(value, dtype=np.bool_), name)


def float_tensor(name: str, value: float | np.ndarray) -> TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def constant(output: str, tensor: TensorProto, name: str | None = None) -> NodeProto:
    return helper.make_node("Constant", [], [output], name=name or f"const_{output}", value=tensor)


def dropout(
    mode: str = "train", ratio: str = "", data: str = "x", out: str = "y", name: str = "drop"
) -> NodeProto:
    """An ONNX Dropout reading `training_mode` from `mode` (an empty `ratio` means the default)."""
    return helper.make_node("Dropout", [data, ratio, mode], [out], name=name)


def decomposed_dropout() -> list[NodeProto]:
    """`RandomUniformLike -> Less -> Cast -> Div -> Mul`: a train-mode dropout spelled out."""
    return [
        helper.make_node("RandomUniformLike", ["x"], ["r"], name="rand"),
        helper.make_node("Less", ["r", "keep"], ["m"], name="less"),
        helper.make_node("Cast", ["m"], ["mf"], name="cast", to=TensorProto.FLOAT),
        helper.make_node("Div", ["mf", "keep"], ["scale"], name="div"),
        helper.make_node("Mul", ["x", "scale"], ["y"], name="mul"),
    ]


def model(
    nodes: Sequence[NodeProto],
    *,
    inputs: Sequence = (),
    outputs: Sequence = (),
    initializers: Sequence[TensorProto] = (),
    functions: Sequence[onnx.FunctionProto] = (),
    opset: int = OPSET,
    domains: Sequence[tuple[str, int]] = (),
) -> ModelProto:
    graph = helper.make_graph(
        list(nodes),
        "main",
        list(inputs) or [value_info("x")],
        list(outputs) or [value_info("y")],
        initializer=list(initializers),
    )
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in domains]
    return helper.make_model(graph, opset_imports=opsets, functions=list(functions))


def save(proto: ModelProto, folder: Path, name: str = "model.onnx", *, check: bool = True) -> Path:
    if check:
        onnx.checker.check_model(proto)
    path = folder / name
    path.write_bytes(proto.SerializeToString())
    return path


def dropout_model(mode_source: str = "initializer", value: bool = True) -> ModelProto:
    """`x -> Dropout(x, training_mode=train) -> y` with `train` from an initializer or a Constant."""
    if mode_source == "initializer":
        return model([dropout()], initializers=[bool_tensor("train", value)])
    return model([constant("train", bool_tensor("value", value), name="mode"), dropout()])


def if_node(name: str, then_nodes: Sequence[NodeProto], out: str = "y") -> NodeProto:
    """An If on graph input `c`; the then branch runs `then_nodes` (ending in `branch_out`)."""
    then_branch = helper.make_graph(
        list(then_nodes), f"{name}_then", [], [value_info("branch_out")]
    )
    else_branch = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["else_out"])],
        f"{name}_else",
        [],
        [value_info("else_out")],
    )
    return helper.make_node(
        "If", ["c"], [out], name=name, then_branch=then_branch, else_branch=else_branch
    )


def branching_model(nodes: Sequence[NodeProto], initializers: Sequence[TensorProto] = ()):
    inputs = [value_info("x"), value_info("c", TensorProto.BOOL, ())]
    return model(nodes, inputs=inputs, initializers=initializers)


def nested_if_model(depth: int) -> ModelProto:
    """`depth` Ifs, each in the previous one's then branch, a training Dropout at the bottom.

    Built in place: onnx.helper copies subgraphs through protobuf, which refuses deep nesting.
    """
    proto = branching_model([], initializers=[bool_tensor("train", True)])
    graph = proto.graph
    for level in range(depth):
        node = graph.node.add(op_type="If", name=f"if{level}", input=["c"], output=[f"y{level}"])
        node.attribute.add(name="else_branch", type=AttributeProto.GRAPH).g.CopyFrom(
            helper.make_graph(
                [helper.make_node("Identity", ["x"], [f"e{level}"])],
                f"else{level}",
                [],
                [value_info(f"e{level}")],
            )
        )
        graph = node.attribute.add(name="then_branch", type=AttributeProto.GRAPH).g
        graph.name = f"then{level}"
        graph.output.append(value_info(f"y{level + 1}"))
    proto.graph.output[0].name = "y0"
    graph.node.append(dropout(out=f"y{depth}"))
    return proto


def external_model(folder: Path) -> Path:
    """A 64x64 weight saved to `weights.bin`; Dropout's mode is a Constant node (never external)."""
    weight = float_tensor("w", np.ones((64, 64)))
    proto = model(
        [
            helper.make_node("Add", ["x", "w"], ["h"], name="add"),
            constant("train", bool_tensor("value", True), name="mode"),
            dropout(data="h"),
        ],
        inputs=[value_info("x", shape=(64, 64))],
        outputs=[value_info("y", shape=(64, 64))],
        initializers=[weight],
    )
    onnx.checker.check_model(proto)
    path = folder / "model.onnx"
    onnx.save_model(
        proto,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    assert (folder / "weights.bin").is_file()
    return path


def model_with_external_location(folder: Path, location: str) -> Path:
    """A model whose weight claims to live at `location`; written as-is, without onnx.save_model."""
    weight = float_tensor("w", np.ones(2))
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    weight.external_data.add(key="location", value=location)
    weight.external_data.add(key="length", value="8")
    proto = model([helper.make_node("Add", ["x", "w"], ["y"], name="add")], initializers=[weight])
    return save(proto, folder, check=False)


# --- assertions helpers -----------------------------------------------------------------------


def summary(findings: list[Finding]) -> list[tuple[str, Severity, str | None, str | None]]:
    """(rule, severity, scope, node) per finding, in a stable order."""
    return sorted((f.rule, f.severity, f.location.scope, f.location.node) for f in findings)


def only(findings: list[Finding], rule: str) -> Finding:
    matching = [f for f in findings if f.rule == rule]
    assert len(matching) == 1, summary(findings)
    return matching[0]


TRAINING = ("training-dropout", Severity.ERROR, "main", "drop")
NOOP = ("noop-dropout", Severity.INFO, "main", "drop")
DYNAMIC = ("dynamic-dropout-mode", Severity.WARNING, "main", "drop")


# --- 1. Dropout training_mode constants -------------------------------------------------------


def test_training_mode_initializer_true_is_training_dropout(tmp_path: Path) -> None:
    findings = inspect_artifact(save(dropout_model("initializer"), tmp_path))
    assert summary(findings) == [TRAINING]
    assert "initializer 'train'" in findings[0].message
    assert findings[0].location.op_type == "Dropout"


def test_training_mode_constant_node_true_is_training_dropout(tmp_path: Path) -> None:
    findings = inspect_artifact(save(dropout_model("constant"), tmp_path))
    assert summary(findings) == [TRAINING]
    assert "Constant 'mode'" in findings[0].message


@pytest.mark.parametrize("source", ["initializer", "constant"])
def test_training_mode_constant_false_is_noop_only(tmp_path: Path, source: str) -> None:
    findings = inspect_artifact(save(dropout_model(source, value=False), tmp_path))
    assert summary(findings) == [NOOP]


@pytest.mark.parametrize("inputs", [["x"], ["x", "ratio"]], ids=["data-only", "data-ratio"])
def test_training_mode_omitted_is_noop_only(tmp_path: Path, inputs: list[str]) -> None:
    node = helper.make_node("Dropout", inputs, ["y"], name="drop")
    proto = model([node], initializers=[float_tensor("ratio", 0.5)])
    assert summary(inspect_artifact(save(proto, tmp_path))) == [NOOP]


def test_zero_ratio_with_training_true_is_noop_not_training(tmp_path: Path) -> None:
    proto = model(
        [dropout(ratio="ratio")],
        initializers=[float_tensor("ratio", 0.0), bool_tensor("train", True)],
    )
    findings = inspect_artifact(save(proto, tmp_path))
    assert summary(findings) == [NOOP]
    assert "ratio 0" in findings[0].message


# --- 2. Dropout mode decided at run time ------------------------------------------------------


def test_training_mode_from_graph_input_is_dynamic(tmp_path: Path) -> None:
    proto = model([dropout()], inputs=[value_info("x"), value_info("train", TensorProto.BOOL, ())])
    findings = inspect_artifact(save(proto, tmp_path))
    assert summary(findings) == [DYNAMIC]
    assert "graph input 'train'" in findings[0].message


def test_training_mode_computed_by_a_node_is_dynamic(tmp_path: Path) -> None:
    proto = model(
        [helper.make_node("Not", ["eval"], ["train"], name="flip"), dropout()],
        inputs=[value_info("x"), value_info("eval", TensorProto.BOOL, ())],
    )
    findings = inspect_artifact(save(proto, tmp_path))
    assert summary(findings) == [DYNAMIC]
    assert "computed value 'train'" in findings[0].message


# --- 3. subgraphs resolve names through enclosing scopes --------------------------------------


def test_if_branch_dropout_reads_outer_initializer(tmp_path: Path) -> None:
    proto = branching_model(
        [if_node("branch", [dropout(out="branch_out")])], initializers=[bool_tensor("train", True)]
    )
    findings = inspect_artifact(save(proto, tmp_path))
    assert summary(findings) == [
        ("training-dropout", Severity.ERROR, "main/branch.then_branch", "drop")
    ]


def test_if_branch_dropout_reads_outer_constant_node(tmp_path: Path) -> None:
    proto = branching_model(
        [
            constant("train", bool_tensor("value", True), name="mode"),
            if_node("branch", [dropout(out="branch_out")]),
        ]
    )
    findings = inspect_artifact(save(proto, tmp_path))
    assert summary(findings) == [
        ("training-dropout", Severity.ERROR, "main/branch.then_branch", "drop")
    ]
    assert "Constant 'mode'" in findings[0].message


def test_if_inside_loop_body_reads_top_level_constant(tmp_path: Path) -> None:
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            if_node("branch", [dropout(out="branch_out")], out="body_out"),
        ],
        "loop_body",
        [value_info("i", TensorProto.INT64, ()), value_info("cond_in", TensorProto.BOOL, ())],
        [value_info("cond_out", TensorProto.BOOL, ()), value_info("body_out")],
    )
    loop = helper.make_node("Loop", ["trips", ""], ["y"], name="loop", body=body)
    proto = branching_model(
        [loop],
        initializers=[bool_tensor("train", True), numpy_helper.from_array(np.array(2), "trips")],
    )
    proto.graph.output[0].type.tensor_type.shape.dim.insert(0, onnx.TensorShapeProto.Dimension())
    findings = inspect_artifact(save(proto, tmp_path))
    assert summary(findings) == [
        ("training-dropout", Severity.ERROR, "main/loop.body/branch.then_branch", "drop")
    ]


@pytest.mark.parametrize(
    ("outer", "inner", "expected"),
    [(True, False, "noop-dropout"), (False, True, "training-dropout")],
    ids=["inner-false-hides-outer-true", "inner-true-hides-outer-false"],
)
def test_constant_inside_branch_shadows_outer_name(
    tmp_path: Path, outer: bool, inner: bool, expected: str
) -> None:
    then_nodes = [
        constant("train", bool_tensor("value", inner), name="inner_mode"),
        dropout(out="branch_out"),
    ]
    proto = branching_model(
        [if_node("branch", then_nodes)], initializers=[bool_tensor("train", outer)]
    )
    # onnx.checker rejects a subgraph that redefines an outer name (SSA), but exporters and
    # hand edits produce them and runtimes resolve the innermost definition; so must we.
    findings = inspect_artifact(save(proto, tmp_path, check=False))
    assert [(f.rule, f.location.scope) for f in findings] == [(expected, "main/branch.then_branch")]


def test_computed_value_inside_branch_shadows_outer_constant(tmp_path: Path) -> None:
    then_nodes = [helper.make_node("Not", ["c"], ["train"], name="flip"), dropout(out="branch_out")]
    proto = branching_model(
        [if_node("branch", then_nodes)], initializers=[bool_tensor("train", True)]
    )
    findings = inspect_artifact(save(proto, tmp_path, check=False))  # not SSA, as above
    assert summary(findings) == [
        ("dynamic-dropout-mode", Severity.WARNING, "main/branch.then_branch", "drop")
    ]
    assert "computed value 'train'" in findings[0].message


# --- 4. model-local functions -----------------------------------------------------------------


def function_model(nodes: Sequence[NodeProto], inputs: Sequence[str]) -> ModelProto:
    function = helper.make_function(
        "custom", "DropBlock", list(inputs), ["y"], list(nodes), [helper.make_opsetid("", OPSET)]
    )
    call = helper.make_node("DropBlock", list(inputs), ["y"], name="call", domain="custom")
    graph_inputs = [value_info("x")]
    if "train" in inputs:
        graph_inputs.append(value_info("train", TensorProto.BOOL, ()))
    return model([call], inputs=graph_inputs, functions=[function], domains=[("custom", 1)])


def test_function_body_constant_true_is_training_dropout(tmp_path: Path) -> None:
    proto = function_model([constant("train", bool_tensor("value", True)), dropout()], ["x"])
    findings = inspect_artifact(save(proto, tmp_path))
    assert summary(findings) == [
        ("training-dropout", Severity.ERROR, "function custom::DropBlock", "drop")
    ]


def test_function_input_mode_is_dynamic(tmp_path: Path) -> None:
    proto = function_model([dropout()], ["x", "train"])
    findings = inspect_artifact(save(proto, tmp_path))
    assert summary(findings) == [
        ("dynamic-dropout-mode", Severity.WARNING, "function custom::DropBlock", "drop")
    ]
    assert "'train'" in findings[0].message


# --- 5. BatchNormalization ---------------------------------------------------------------------


def batchnorm_model(outputs: int = 1, **attributes: int) -> ModelProto:
    names = ["y", "running_mean", "running_var"][:outputs]
    node = helper.make_node(
        "BatchNormalization", ["x", "scale", "bias", "mean", "var"], names, name="bn", **attributes
    )
    stats = [float_tensor(n, np.ones(2)) for n in ("scale", "bias", "mean", "var")]
    shape = (1, 2, 2)
    return model(
        [node],
        inputs=[value_info("x", shape=shape)],
        outputs=[value_info("y", shape=shape)],
        initializers=stats,
        opset=15,
    )


def test_batchnorm_training_mode_attribute_is_training_batchnorm(tmp_path: Path) -> None:
    findings = inspect_artifact(save(batchnorm_model(training_mode=1), tmp_path))
    assert summary(findings) == [("training-batchnorm", Severity.ERROR, "main", "bn")]
    assert "training_mode=1" in findings[0].message


def test_batchnorm_with_running_stat_outputs_is_training_batchnorm(tmp_path: Path) -> None:
    findings = inspect_artifact(save(batchnorm_model(outputs=3), tmp_path))
    assert summary(findings) == [("training-batchnorm", Severity.ERROR, "main", "bn")]
    assert "3 outputs" in findings[0].message


def test_inference_batchnorm_is_clean(tmp_path: Path) -> None:
    assert inspect_artifact(save(batchnorm_model(training_mode=0), tmp_path)) == []


def training_batchnorm_over(nodes: Sequence[NodeProto], extra: Sequence[TensorProto] = ()):
    """A training-mode BatchNormalization normalizing `n`, which `nodes` compute."""
    bn = helper.make_node(
        "BatchNormalization",
        ["n", "scale", "bias", "mean", "var"],
        ["y"],
        name="bn",
        training_mode=1,
    )
    stats = [float_tensor(name, np.ones(2)) for name in ("scale", "bias", "mean", "var")]
    inputs = [value_info("x", shape=(1, 2, 2)), value_info("c", TensorProto.BOOL, ())]
    return model(
        [*nodes, bn],
        inputs=inputs,
        outputs=[value_info("y", shape=(1, 2, 2))],
        initializers=[*stats, *extra],
        opset=15,
    )


def weight_chain(length: int) -> list[NodeProto]:
    """`w -> Identity x length -> n`: values made from a weight alone."""
    names = ["w", *(f"w{i}" for i in range(1, length)), "n"]
    return [
        helper.make_node("Identity", [src], [dst], name=f"id{i}")
        for i, (src, dst) in enumerate(zip(names, names[1:]))
    ]


WEIGHT = float_tensor("w", np.ones((1, 2, 2)))


def test_batchnorm_over_weights_alone_is_weight_standardization(tmp_path: Path) -> None:
    findings = inspect_artifact(save(training_batchnorm_over(weight_chain(3), [WEIGHT]), tmp_path))
    assert findings == []


def test_batchnorm_weight_walk_finds_producers_listed_after_it(tmp_path: Path) -> None:
    """Out of topological order (onnx.checker refuses it, a runtime may sort it): the producer
    lookup looks past the reader when nothing before it computes the value."""
    proto = training_batchnorm_over([], [WEIGHT])
    proto.graph.node.extend(weight_chain(3))
    assert inspect_artifact(save(proto, tmp_path, check=False)) == []


def test_batchnorm_over_a_weight_chain_longer_than_the_walk_is_reported(tmp_path: Path) -> None:
    """The walk gives up after 16 producers, and a walk that gives up counts as activations."""
    findings = inspect_artifact(save(training_batchnorm_over(weight_chain(20), [WEIGHT]), tmp_path))
    assert summary(findings) == [("training-batchnorm", Severity.ERROR, "main", "bn")]


def test_batchnorm_over_an_if_reading_activations_is_reported(tmp_path: Path) -> None:
    """An If's only input is its condition, but its branches read `x` from the outer scope:
    the values it outputs are activations, not weights."""
    branch = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["b"], name="relu")],
        "branch",
        [],
        [value_info("b", shape=(1, 2, 2))],
    )
    node = helper.make_node("If", ["k"], ["n"], name="if", then_branch=branch, else_branch=branch)
    proto = training_batchnorm_over([node], [bool_tensor("k", True)])
    findings = inspect_artifact(save(proto, tmp_path))
    assert summary(findings) == [("training-batchnorm", Severity.ERROR, "main", "bn")]


# --- 6. random operators and decomposed dropout -----------------------------------------------


def test_random_normal_alone_is_random_op(tmp_path: Path) -> None:
    node = helper.make_node("RandomNormal", [], ["y"], name="noise", shape=[2])
    findings = inspect_artifact(save(model([node], inputs=[]), tmp_path))
    assert summary(findings) == [("random-op", Severity.WARNING, "main", "noise")]


def test_decomposed_dropout_chain_is_training_dropout_not_random_op(tmp_path: Path) -> None:
    proto = model(decomposed_dropout(), initializers=[float_tensor("keep", 0.9)])
    findings = inspect_artifact(save(proto, tmp_path))
    assert summary(findings) == [("training-dropout", Severity.ERROR, "main", "rand")]
    assert "RandomUniformLike -> Less -> Cast -> Div -> Mul" in findings[0].message


def test_bernoulli_mask_is_training_dropout(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Bernoulli", ["p"], ["mask"], name="sample"),
        helper.make_node("Mul", ["x", "mask"], ["y"], name="mul"),
    ]
    proto = model(nodes, initializers=[float_tensor("p", np.full(2, 0.9))])
    findings = inspect_artifact(save(proto, tmp_path))
    assert summary(findings) == [("training-dropout", Severity.ERROR, "main", "sample")]
    assert "Bernoulli -> Mul" in findings[0].message


def test_random_noise_added_to_data_is_random_op_not_dropout(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("RandomUniformLike", ["x"], ["r"], name="rand"),
        helper.make_node("Add", ["x", "r"], ["y"], name="add"),
    ]
    findings = inspect_artifact(save(model(nodes), tmp_path))
    assert summary(findings) == [("random-op", Severity.WARNING, "main", "rand")]


# --- 7. module paths --------------------------------------------------------------------------


def module_of_dropout(
    folder: Path, name: str, metadata: dict[str, str] | None = None
) -> str | None:
    node = dropout(name=name)
    helper.set_metadata_props(node, metadata or {})
    proto = model([node], initializers=[bool_tensor("train", True)])
    return only(inspect_artifact(save(proto, folder)), "training-dropout").location.module


def test_module_from_legacy_node_name(tmp_path: Path) -> None:
    assert module_of_dropout(tmp_path, "/encoder/layers.0/dropout/Dropout") == (
        "encoder.layers.0.dropout"
    )


def test_module_from_legacy_node_name_with_qualified_segments(tmp_path: Path) -> None:
    assert module_of_dropout(tmp_path, "/head/head.1/Dropout") == "head.1"


def test_module_from_dynamo_name_scopes(tmp_path: Path) -> None:
    scopes = "['', 'layers.0', 'layers.0.drop', 'native_dropout']"
    module = module_of_dropout(
        tmp_path, "node_native_dropout", {"pkg.torch.onnx.name_scopes": scopes}
    )
    assert module == "layers.0.drop"


def test_module_from_dynamo_namespace(tmp_path: Path) -> None:
    namespace = (
        ": __main__.Net/layers.0: torch.nn.modules.container.Sequential/"
        "layers.0.drop: torch.nn.modules.dropout.Dropout/native_dropout: aten.native_dropout.default"
    )
    module = module_of_dropout(tmp_path, "node_native_dropout", {"namespace": namespace})
    assert module == "layers.0.drop"


@pytest.mark.parametrize("scopes", ["5", "[1, 2, 3]", "{'a': 1}", "[" * 200 + "]" * 200])
def test_malformed_name_scopes_fall_back_to_node_name(tmp_path: Path, scopes: str) -> None:
    metadata = {"pkg.torch.onnx.name_scopes": scopes}
    assert module_of_dropout(tmp_path, "/block/drop/Dropout", metadata) == "block.drop"


# --- 8. external data is never read ----------------------------------------------------------


def test_missing_weight_file_is_reported_and_inspection_goes_on(tmp_path: Path) -> None:
    path = external_model(tmp_path)
    (tmp_path / "weights.bin").unlink()
    findings = inspect_artifact(path)
    assert summary(findings) == [
        ("missing-external-data", Severity.INFO, "main", None),
        TRAINING,
    ]
    assert "'weights.bin'" in only(findings, "missing-external-data").message


def test_present_weight_file_is_not_reported(tmp_path: Path) -> None:
    findings = inspect_artifact(external_model(tmp_path))
    assert summary(findings) == [TRAINING]


def test_training_mode_stored_as_external_data_is_dynamic(tmp_path: Path) -> None:
    proto = dropout_model("initializer")
    onnx.save_model(
        proto,
        str(tmp_path / "model.onnx"),
        save_as_external_data=True,
        location="weights.bin",
        size_threshold=0,
    )
    findings = inspect_artifact(tmp_path / "model.onnx")
    assert summary(findings) == [DYNAMIC]
    assert "stored in external data" in findings[0].message


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_inspection_never_opens_the_weight_file(tmp_path: Path) -> None:
    # Opening a FIFO for reading blocks until a writer comes; none ever will.
    path = external_model(tmp_path)
    (tmp_path / "weights.bin").unlink()
    os.mkfifo(tmp_path / "weights.bin")
    script = (
        "import json, sys\n"
        "from exportcheck.graph_checks import inspect_artifact\n"
        "print(json.dumps([f.rule for f in inspect_artifact(sys.argv[1])]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=True,
    )
    assert json.loads(done.stdout) == ["training-dropout"]


# --- 9. unsafe external data locations --------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "reason"),
    [("../outside.bin", "outside the model's folder"), ("ABSOLUTE", "absolute location")],
)
def test_external_location_outside_model_folder_is_refused(
    tmp_path: Path, location: str, reason: str
) -> None:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"\0" * 8)
    folder = tmp_path / "model"
    folder.mkdir()
    path = model_with_external_location(
        folder, str(outside) if location == "ABSOLUTE" else location
    )
    with pytest.raises(UnsafeExternalDataError, match=reason):
        inspect_artifact(path)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_external_location_symlinked_outside_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"\0" * 8)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.bin").symlink_to(outside)
    path = model_with_external_location(folder, "weights.bin")
    with pytest.raises(UnsafeExternalDataError, match="outside the model's folder"):
        inspect_artifact(path)


# --- 10. deep nesting -------------------------------------------------------------------------


def test_deepest_parseable_if_nesting_is_walked(tmp_path: Path) -> None:
    path = save(nested_if_model(DEEPEST_PARSEABLE_IF), tmp_path)
    finding = only(inspect_artifact(path), "training-dropout")
    segments = finding.location.scope.split("/")
    assert segments[0] == "main"
    assert segments[1:] == [f"if{level}.then_branch" for level in range(DEEPEST_PARSEABLE_IF)]
    assert finding.location.node == "drop"


def test_if_nesting_beyond_protobuf_limit_is_a_clean_input_error(tmp_path: Path) -> None:
    # 60 levels: onnx.checker, onnxruntime and python protobuf all refuse to parse this file.
    path = save(nested_if_model(60), tmp_path, check=False)
    with pytest.raises(UnreadableArtifactError, match="not a valid ONNX protobuf"):
        inspect_artifact(path)


# --- 11. cost grows with the graph, findings with the Dropouts -------------------------------


def test_large_graph_gives_one_finding_per_dropout(tmp_path: Path) -> None:
    nodes: list[NodeProto] = []
    value = "x"
    for i in range(20_000):
        nodes.append(helper.make_node("Add", [value, "one"], [f"a{i}"], name=f"add{i}"))
        value = f"a{i}"
        if i % 400 == 399:
            nodes.append(dropout(data=value, out=f"d{i}", name=f"drop{i}"))
            value = f"d{i}"
    nodes.append(helper.make_node("Identity", [value], ["y"], name="out"))
    proto = model(nodes, initializers=[float_tensor("one", 1.0), bool_tensor("train", True)])
    findings = inspect_artifact(save(proto, tmp_path))
    assert len(findings) == 50
    assert {f.rule for f in findings} == {"training-dropout"}
    assert len({f.location.node for f in findings}) == 50


# --- 12. domains ------------------------------------------------------------------------------


def test_dropout_in_foreign_domain_is_not_onnx_dropout(tmp_path: Path) -> None:
    node = helper.make_node("Dropout", ["x", "", "train"], ["y"], name="drop", domain="com.example")
    proto = model([node], initializers=[bool_tensor("train", True)], domains=[("com.example", 1)])
    assert inspect_artifact(save(proto, tmp_path)) == []


def test_dropout_in_explicit_ai_onnx_domain_is_onnx_dropout(tmp_path: Path) -> None:
    node = helper.make_node("Dropout", ["x", "", "train"], ["y"], name="drop", domain="ai.onnx")
    proto = model([node], initializers=[bool_tensor("train", True)])
    # The checker wants an opset import spelled "ai.onnx"; runtimes treat it as the default domain.
    assert summary(inspect_artifact(save(proto, tmp_path, check=False))) == [TRAINING]


# --- 13. which nodes can hold subgraphs -------------------------------------------------------


def test_subgraph_operators_are_those_onnx_declares() -> None:
    """The reader reads attributes only of these standard operators (and of every node in
    another domain); the list must follow onnx's schemas."""
    from exportcheck.readers.onnx.walk import SUBGRAPH_OPS

    subgraph_types = {AttributeProto.GRAPH, AttributeProto.GRAPHS}
    declared = {
        schema.name
        for schema in onnx.defs.get_all_schemas_with_history()
        if schema.domain in ("", "ai.onnx")
        and any(attr.type in subgraph_types for attr in schema.attributes.values())
    }
    assert declared == SUBGRAPH_OPS


def _dropout_subgraph_attribute(name: str) -> AttributeProto:
    body = helper.make_graph([dropout(out="inner")], f"{name}_body", [], [value_info("inner")])
    return helper.make_attribute(name, body)


def test_subgraph_of_a_custom_domain_operator_is_read(tmp_path: Path) -> None:
    node = helper.make_node("Region", ["x"], ["y"], name="region", domain="com.example")
    node.attribute.append(_dropout_subgraph_attribute("body"))
    proto = model([node], initializers=[bool_tensor("train", True)], domains=[("com.example", 1)])
    findings = inspect_artifact(save(proto, tmp_path, check=False))
    assert summary(findings) == [("training-dropout", Severity.ERROR, "main/region.body", "drop")]


def test_subgraph_on_a_standard_operator_that_declares_none_is_not_read(tmp_path: Path) -> None:
    """No runtime can run such a graph: the checker and ONNX Runtime refuse the attribute."""
    node = helper.make_node("Add", ["x", "x"], ["y"], name="add")
    node.attribute.append(_dropout_subgraph_attribute("body"))
    proto = model([node], initializers=[bool_tensor("train", True)])
    with pytest.raises(onnx.checker.ValidationError, match="Unrecognized attribute: body"):
        onnx.checker.check_model(proto)
    assert inspect_artifact(save(proto, tmp_path, check=False)) == []


def test_input_names_of_matched_operators_follow_onnx_schemas() -> None:
    """The reader names the inputs of the operators rules match without asking onnx.defs;
    every opset onnx knows must give the names onnx's own schema gives."""
    from exportcheck.graph_checks import wanted_ops
    from exportcheck.readers.onnx.arguments import RULE_OP_INPUTS, input_names
    from exportcheck.rules import graph_rules

    standard = {op for op in wanted_ops(graph_rules()) if "::" not in op and op[0].isupper()}
    assert standard == set(RULE_OP_INPUTS)
    for op in sorted(standard):
        for opset in range(1, onnx.defs.onnx_opset_version() + 1):
            try:
                schema = onnx.defs.get_schema(op, opset, "")
            except onnx.defs.SchemaError:
                expected: tuple[str, ...] = ()
            else:
                expected = tuple(formal.name for formal in schema.inputs)
            assert input_names(op, "", opset) == expected, (op, opset)


def test_plain_operator_list_holds_no_subgraph_operator() -> None:
    """The reader never reads the attributes of these: none may declare a subgraph attribute
    in any version the installed onnx knows, and the list must name every standard operator
    of its opset that holds none."""
    from exportcheck.readers.onnx.operators import OPSET, PLAIN_OPERATORS
    from exportcheck.readers.onnx.walk import SUBGRAPH_OPS

    subgraph_types = {AttributeProto.GRAPH, AttributeProto.GRAPHS}
    standard: dict[str, bool] = {}
    for schema in onnx.defs.get_all_schemas_with_history():
        if schema.domain in ("", "ai.onnx") and schema.since_version <= OPSET:
            holds = any(attr.type in subgraph_types for attr in schema.attributes.values())
            standard[schema.name] = standard.get(schema.name, False) or holds
    assert not {name for name in PLAIN_OPERATORS if standard.get(name, False)}
    assert "Constant" not in PLAIN_OPERATORS and not PLAIN_OPERATORS & SUBGRAPH_OPS
    if onnx.defs.onnx_opset_version() >= OPSET:
        assert {name for name, holds in standard.items() if not holds} - {"Constant"} == set(
            PLAIN_OPERATORS
        )


def test_custom_domain_operator_named_like_a_standard_one_is_read_by_op_type(
    tmp_path: Path,
) -> None:
    """The documented limit of reading standard operator names without their domain."""
    node = helper.make_node("Relu", ["x"], ["y"], name="relu", domain="com.example")
    node.attribute.append(_dropout_subgraph_attribute("body"))
    proto = model([node], initializers=[bool_tensor("train", True)], domains=[("com.example", 1)])
    assert inspect_artifact(save(proto, tmp_path, check=False)) == []


def test_reading_and_judging_a_graph_leaves_no_reference_cycles(tmp_path: Path) -> None:
    """The inspect command pauses the cyclic collector; what the reader builds (scopes, views,
    the producer/consumer index a decomposed dropout makes it build) must be freed by reference
    counting alone, or a folder of models would stay in memory until the process ends."""
    import gc

    from exportcheck.graph_checks import findings_for_view, wanted_ops
    from exportcheck.readers import read_artifact
    from exportcheck.rules import graph_rules

    nodes = [
        *decomposed_dropout(),
        constant("train", bool_tensor("value", True)),
        if_node("branch", [dropout(out="branch_out")], out="z"),
    ]
    proto = model(
        nodes,
        inputs=[value_info("x"), value_info("c", TensorProto.BOOL, ())],
        outputs=[value_info("y"), value_info("z")],
        initializers=[float_tensor("keep", 0.9)],
    )
    path = str(save(proto, tmp_path))
    rules = graph_rules()
    # One untimed read first: a module's first import (lazy decoders, caches) is not the reader.
    findings_for_view(read_artifact(path, wanted_ops(rules)), path, rules)
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        view = read_artifact(path, wanted_ops(rules))
        findings = findings_for_view(view, path, rules)
        del view
        collected = gc.collect()
        kinds = sorted({type(o).__name__ for o in gc.garbage})
        assert collected == 0, kinds
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert sorted(f.location.node for f in findings if f.rule == "training-dropout") == [
        "drop",
        "rand",
    ]

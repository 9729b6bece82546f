"""An ONNX `If` whose condition is a constant: the rules see only the branch it takes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import GraphProto, NodeProto, TensorProto, helper, numpy_helper

from exportcheck.errors import UnsafeExternalDataError
from exportcheck.graph_checks import inspect_artifact
from exportcheck.readers.onnx import read_onnx
from exportcheck.results.findings import Severity

OPSET = 18


def value(name: str, elem: int = TensorProto.FLOAT, shape: Sequence[int] = (2,)):
    return helper.make_tensor_value_info(name, elem, list(shape))


def flag(name: str, truth: bool) -> TensorProto:
    return numpy_helper.from_array(np.array(truth, dtype=np.bool_), name)


def branch(name: str, nodes: Sequence[NodeProto], out: str) -> GraphProto:
    return helper.make_graph(list(nodes), name, [], [value(out)])


def training_dropout(name: str, out: str) -> NodeProto:
    return helper.make_node("Dropout", ["x", "", "train"], [out], name=name)


def random_noise(name: str, out: str) -> list[NodeProto]:
    return [
        helper.make_node("RandomNormalLike", ["x"], [f"{name}_noise"], name=name),
        helper.make_node("Add", ["x", f"{name}_noise"], [out], name=f"{name}_add"),
    ]


def if_model(
    condition: str,
    then_nodes: Sequence[NodeProto],
    else_nodes: Sequence[NodeProto],
    *,
    before: Sequence[NodeProto] = (),
    initializers: Sequence[TensorProto] = (),
) -> onnx.ModelProto:
    """`y = If(condition)`: then_nodes end in `then_out`, else_nodes in `else_out`; a training
    flag `train` is an initializer, and `c` is a graph input (a condition known at run time)."""
    node = helper.make_node(
        "If",
        [condition],
        ["y"],
        name="gate",
        then_branch=branch("then", then_nodes, "then_out"),
        else_branch=branch("else", else_nodes, "else_out"),
    )
    graph = helper.make_graph(
        [*before, node],
        "main",
        [value("x"), value("c", TensorProto.BOOL, ())],
        [value("y")],
        initializer=[flag("train", True), *initializers],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(proto)
    return proto


def save(proto: onnx.ModelProto, folder: Path) -> Path:
    path = folder / "model.onnx"
    path.write_bytes(proto.SerializeToString())
    return path


def found(path: Path) -> list[tuple[str, Severity, str | None, str | None]]:
    return sorted(
        (f.rule, f.severity, f.location.scope, f.location.node) for f in inspect_artifact(path)
    )


THEN_DROPOUT = ("training-dropout", Severity.ERROR, "main/gate.then_branch", "then_drop")
ELSE_DROPOUT = ("training-dropout", Severity.ERROR, "main/gate.else_branch", "else_drop")


def both_branches_dropout(condition: str, **kwargs) -> onnx.ModelProto:
    return if_model(
        condition,
        [training_dropout("then_drop", "then_out")],
        [training_dropout("else_drop", "else_out")],
        **kwargs,
    )


def test_condition_known_only_at_run_time_shows_both_branches(tmp_path: Path) -> None:
    assert found(save(both_branches_dropout("c"), tmp_path)) == [ELSE_DROPOUT, THEN_DROPOUT]


@pytest.mark.parametrize("source", ["initializer", "constant"])
@pytest.mark.parametrize("truth", [True, False])
def test_constant_condition_shows_only_the_taken_branch(
    tmp_path: Path, source: str, truth: bool
) -> None:
    if source == "initializer":
        proto = both_branches_dropout("k", initializers=[flag("k", truth)])
    else:
        make_k = helper.make_node("Constant", [], ["k"], name="k", value=flag("value", truth))
        proto = both_branches_dropout("k", before=[make_k])
    assert found(save(proto, tmp_path)) == [THEN_DROPOUT if truth else ELSE_DROPOUT]


def test_random_op_in_the_dead_branch_is_not_reported(tmp_path: Path) -> None:
    then_nodes = [helper.make_node("Identity", ["x"], ["then_out"], name="keep")]
    live = if_model("c", then_nodes, random_noise("noise", "else_out"))
    assert found(save(live, tmp_path)) == [
        ("random-op", Severity.WARNING, "main/gate.else_branch", "noise")
    ]
    dead = if_model(
        "k", then_nodes, random_noise("noise", "else_out"), initializers=[flag("k", True)]
    )
    assert found(save(dead, tmp_path)) == []


def test_everything_under_a_dead_branch_is_dead(tmp_path: Path) -> None:
    inner = helper.make_node(
        "If",
        ["c"],
        ["else_out"],
        name="inner",
        then_branch=branch("inner_then", [training_dropout("deep_drop", "a")], "a"),
        else_branch=branch("inner_else", [helper.make_node("Identity", ["x"], ["b"])], "b"),
    )
    proto = if_model(
        "k",
        [training_dropout("then_drop", "then_out")],
        [inner],
        initializers=[flag("k", True)],
    )
    path = save(proto, tmp_path)
    assert found(path) == [THEN_DROPOUT]
    view = read_onnx(str(path), frozenset({"Dropout"}))
    assert view.scope_count == 5 and view.node_count == 5  # dead scopes are still walked


def test_dead_branch_weights_are_still_checked_for_safety(tmp_path: Path) -> None:
    """A runtime opens a dead branch's weight files too: a location outside the model's folder
    is refused wherever it sits."""
    weight = numpy_helper.from_array(np.ones(2, dtype=np.float32), "w")
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    weight.external_data.add(key="location", value="../outside.bin")
    else_graph = branch("else", [helper.make_node("Add", ["x", "w"], ["else_out"])], "else_out")
    else_graph.initializer.append(weight)
    proto = if_model(
        "k",
        [helper.make_node("Identity", ["x"], ["then_out"])],
        [helper.make_node("Identity", ["x"], ["else_out"])],
        initializers=[flag("k", True)],
    )
    proto.graph.node[0].attribute[1].g.CopyFrom(else_graph)  # written as-is, unchecked
    with pytest.raises(UnsafeExternalDataError, match="outside the model's folder"):
        inspect_artifact(save(proto, tmp_path))

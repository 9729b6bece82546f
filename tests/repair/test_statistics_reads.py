"""A training BatchNormalization's statistics outputs, read somewhere in its scope: wherever the
read is (a nested subgraph, a Loop body, a function body), the switch is refused; a read of
another value, in another scope or under a longer name, does not stop it.

No exporter reads a batch norm's updated statistics from inside a subgraph, so these graphs are
built by hand."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from exportcheck.repair import repair_artifact
from exportcheck.results.repair import Action, NodeRepair
from tests.repair.models import batchnorm_statistics

OPSET = 17
LOCAL = "test.local"


def _value(name: str, shape: list[int], elem: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


def _statistics() -> list[onnx.TensorProto]:
    return [numpy_helper.from_array(v, k) for k, v in batchnorm_statistics().items()]


def _batchnorm() -> onnx.NodeProto:
    return helper.make_node(
        "BatchNormalization",
        ["x", "scale", "bias", "mean", "var"],
        ["y", "new_mean", "new_var"],
        name="bn",
        training_mode=1,
    )


def _branch(name: str, nodes: list[onnx.NodeProto], output: str) -> onnx.GraphProto:
    return helper.make_graph(nodes, name, [], [_value(output, [4])])


def _if(name: str, then_nodes: list[onnx.NodeProto], output: str) -> onnx.NodeProto:
    """An If whose then branch runs `then_nodes` (ending in `output`) and whose else branch
    passes the stored mean through."""
    return helper.make_node(
        "If",
        ["cond"],
        [f"{name}_out"],
        name=name,
        then_branch=_branch(f"{name}_then", then_nodes, output),
        else_branch=_branch(
            f"{name}_else", [helper.make_node("Identity", ["mean"], [f"{name}_e"])], f"{name}_e"
        ),
    )


def _read_two_ifs_deep() -> onnx.NodeProto:
    inner = _if("inner", [helper.make_node("Neg", ["new_mean"], ["negated"])], "negated")
    return _if("outer", [inner, helper.make_node("Identity", ["inner_out"], ["o"])], "o")


def _read_in_loop_body() -> onnx.NodeProto:
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["carried"], ["carried_out"]),
            helper.make_node("Identity", ["loop_cond"], ["cond_out"]),
            helper.make_node("Add", ["carried", "new_mean"], ["summed"]),
        ],
        "body",
        [
            _value("i", [], TensorProto.INT64),
            _value("loop_cond", [], TensorProto.BOOL),
            _value("carried", [4]),
        ],
        [
            _value("cond_out", [], TensorProto.BOOL),
            _value("carried_out", [4]),
            _value("summed", [4]),
        ],
    )
    return helper.make_node(
        "Loop", ["trips", "cond", "mean"], ["outer_out", "scanned"], name="outer", body=body
    )


def _model(extra: onnx.NodeProto, functions: list[onnx.FunctionProto] = ()) -> onnx.ModelProto:
    trips = numpy_helper.from_array(np.array(2, np.int64), "trips")
    graph = helper.make_graph(
        [_batchnorm(), extra],
        "g",
        [_value("x", [3, 4]), _value("cond", [], TensorProto.BOOL)],
        [_value("y", [3, 4]), _value("new_var", [4]), _value(extra.output[0], None)],
        [*_statistics(), trips],
    )
    opsets = [helper.make_opsetid("", OPSET)] + (
        [helper.make_opsetid(LOCAL, 1)] if functions else []
    )
    return helper.make_model(graph, opset_imports=opsets, functions=list(functions))


def _repair(model: onnx.ModelProto, tmp_path) -> dict[tuple[str, str], NodeRepair]:
    source = tmp_path / "model.onnx"
    onnx.save(model, str(source))
    result = repair_artifact(source, tmp_path / "fixed.onnx")
    return {(line.scope, line.node): line for line in result.nodes}


@pytest.mark.parametrize(
    "reader", [_read_two_ifs_deep, _read_in_loop_body], ids=["if-in-if", "loop"]
)
def test_a_statistic_read_only_inside_a_subgraph_refuses_the_switch(reader, tmp_path):
    line = _repair(_model(reader()), tmp_path)[("main", "bn")]
    assert line.action is Action.REFUSED
    assert "'new_mean' is read by" in line.reason


def test_reads_of_other_values_leave_the_switch_to_go_ahead(tmp_path):
    """`new_mean_copy` has the statistic's name inside its own, and the function reads a
    `new_mean` of its own scope: neither is a read of the batch norm's output."""
    function = helper.make_function(
        LOCAL,
        "Shadow",
        ["new_mean"],
        ["new_mean_copy"],
        [helper.make_node("Neg", ["new_mean"], ["new_mean_copy"])],
        [helper.make_opsetid("", OPSET)],
    )
    call = helper.make_node("Shadow", ["mean"], ["new_mean_copy"], name="call", domain=LOCAL)
    line = _repair(_model(call, [function]), tmp_path)[("main", "bn")]
    assert line.action is Action.CHANGED
    assert "unused statistics outputs removed ('new_mean')" in line.reason


def test_a_statistic_read_inside_a_function_body_refuses_the_switch_there(tmp_path):
    """The function holds its statistics as Constants (stored values), and reads `new_mean`."""
    constants = [
        helper.make_node("Constant", [], [tensor.name], value=tensor) for tensor in _statistics()
    ]
    function = helper.make_function(
        LOCAL,
        "TrainNorm",
        ["x"],
        ["negated"],
        [
            *constants,
            _batchnorm(),
            helper.make_node("Neg", ["new_mean"], ["negated"], name="reader"),
        ],
        [helper.make_opsetid("", OPSET)],
    )
    call = helper.make_node("TrainNorm", ["x"], ["z"], name="call", domain=LOCAL)
    lines = _repair(_model(call, [function]), tmp_path)
    # Two batch norms named "bn": nothing reads the main graph's statistics outputs.
    assert lines[("main", "bn")].action is Action.CHANGED
    in_function = lines[(f"function {LOCAL}::TrainNorm", "bn")]
    assert in_function.action is Action.REFUSED and "read by reader" in in_function.reason


def test_removed_statistics_outputs_lose_their_value_info_and_nothing_else_does(tmp_path):
    """Two switched batch norms in one graph; each unused statistic's value_info goes, the
    others stay."""
    second = helper.make_node(
        "BatchNormalization",
        ["y", "scale", "bias", "mean", "var"],
        ["y2", "new_mean2", "new_var2"],
        name="bn2",
        training_mode=1,
    )
    model = _model(second)
    model.graph.output.pop()  # y2 is not a graph output: its value_info is kept
    kept = ["y", "y2", "new_var"]
    model.graph.value_info.extend(
        _value(name, [4]) for name in [*kept, "new_mean", "new_mean2", "new_var2"]
    )
    lines = _repair(model, tmp_path)
    assert {lines[("main", n)].action for n in ("bn", "bn2")} == {Action.CHANGED}
    fixed = onnx.load(str(tmp_path / "fixed.onnx"))
    assert [v.name for v in fixed.graph.value_info] == kept

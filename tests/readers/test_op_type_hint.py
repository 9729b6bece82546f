"""The main graph's op types gathered by one parse (`op_types.main_graph_op_types`): a walk that
takes them as a hint reads what the full walk reads, and a hint that disagrees with a node it
names is dropped for the full walk."""

from __future__ import annotations

import pytest

from exportcheck.readers.onnx import load_model, read_onnx
from exportcheck.readers.onnx.load import read_model_bytes
from exportcheck.readers.onnx.op_types import main_graph_op_types
from exportcheck.repair.onnx_rewrite import MODE_OPS
from exportcheck.rules import RULES

EVERY_RULES_OPS = frozenset().union(*(rule.ops for rule in RULES if rule.ops))


def _views(view):
    return [(n.scope, n.name, n.op, n.position) for n in view.nodes]


@pytest.mark.parametrize(
    ("name", "mode"), [("cnn", "train"), ("transformer", "train"), ("lstm", "eval")]
)
@pytest.mark.parametrize("fmt", ["onnx", "onnx-legacy"])
def test_the_hint_is_the_main_graphs_op_types_and_reads_what_the_full_walk_reads(
    sample_exports, name, mode, fmt
):
    path = sample_exports[(name, mode, fmt)]
    serialized = read_model_bytes(path)
    model = load_model(path, serialized)
    hint = main_graph_op_types(serialized)
    assert hint == [node.op_type for node in model.graph.node]
    for wanted in (MODE_OPS, EVERY_RULES_OPS):
        full = read_onnx(path, wanted, model=model)
        hinted = read_onnx(path, wanted, model=model, main_op_types=hint)
        assert _views(hinted) == _views(full)
        assert (hinted.node_count, hinted.scope_count) == (full.node_count, full.scope_count)


def test_a_hint_that_disagrees_with_a_node_is_dropped_for_the_full_walk(sample_exports):
    path = sample_exports[("cnn", "train", "onnx")]
    model = load_model(path)
    full = read_onnx(path, MODE_OPS, model=model)
    assert any(n.op == "Dropout" for n in full.nodes)
    ops = [node.op_type for node in model.graph.node]
    # The Dropout listed one place early: the node at that place is not one.
    dropout = ops.index("Dropout")
    shifted = ops[: dropout - 1] + ["Dropout"] + ops[dropout - 1 : -1]
    for hint in (shifted, ["Dropout"] * len(ops), ops[:-1]):
        assert _views(read_onnx(path, MODE_OPS, model=model, main_op_types=hint)) == _views(full)


def test_bytes_that_are_no_model_give_no_hint():
    assert main_graph_op_types(b"\x0a\xff\xff\xff") is None

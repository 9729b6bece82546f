"""Which of some value names a scope (a graph or function body, with every subgraph under it)
reads, found without a Python step per node.

The scope's bytes (the file's own for the main graph, else the scope's serialization) are
parsed again into a skeleton (`readers/onnx/skeletons.py`) that declares only what carries a
read (a node's inputs, the subgraphs of its attributes), so the parse (in C) gathers every
input of every node of the scope into one list, and every subgraph at one depth into one
skeleton graph. Reading them through onnx's classes made a Python object per node and per
input: 0.16 s on the 100k-node graph, against 0.02 s this way.

Wire numbers are onnx.proto's: ModelProto.graph 7, GraphProto.node 1, FunctionProto.node 7,
NodeProto.input 1 and attribute 5, AttributeProto.g 6 and graphs 11.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from exportcheck.readers.onnx.protos import FunctionProto
from exportcheck.readers.onnx.skeletons import skeleton_classes


@cache
def _skeletons() -> tuple[Any, Any, Any]:
    """The skeleton Model, Graph and Function classes."""
    layout = {
        "Model": [("graph", 7, "Graph")],
        "Graph": [("node", 1, "Node")],
        "Function": [("node", 7, "Node")],
        # bytes: a name that is not UTF-8 is read all the same
        "Node": [("input", 1, "bytes"), ("attribute", 5, "Attribute")],
        "Attribute": [("g", 6, "Graph"), ("graphs", 11, "Graph")],
    }
    return skeleton_classes("exportcheck_reads", layout, ("Model", "Graph", "Function"))  # type: ignore[return-value]


def names_read(
    scope: Any, names: Iterable[str | bytes], model_bytes: bytes | None = None
) -> set[bytes]:
    """Those of `names` that a node of `scope` (a GraphProto or FunctionProto), or of a subgraph
    under it, takes as an input, as UTF-8 bytes. A subgraph's read counts even where the
    subgraph defines the name itself: never less than the true reads. `model_bytes`: the bytes
    the model was parsed from, when `scope` is its main graph (spares serializing it)."""
    wanted = frozenset(n if isinstance(n, bytes) else n.encode("utf-8") for n in names)
    found: set[bytes] = set()
    if not wanted:
        return found
    model_class, graph_class, function_class = _skeletons()
    if model_bytes is not None:
        pending = [model_class.FromString(model_bytes).graph]
    else:
        skeleton = function_class if isinstance(scope, FunctionProto) else graph_class
        pending = [skeleton.FromString(scope.SerializeToString())]
    while pending:
        graph = pending.pop()
        if not graph.HasField("node"):
            continue
        node = graph.node
        found |= wanted.intersection(node.input)
        if node.HasField("attribute"):
            attribute = node.attribute
            pending += [getattr(attribute, f) for f in ("g", "graphs") if attribute.HasField(f)]
    return found

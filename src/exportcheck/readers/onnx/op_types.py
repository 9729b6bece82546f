"""The op types of a model's main-graph nodes, in order, gathered by one parse in C.

A skeleton (`skeletons`) declares ModelProto.graph (7), GraphProto.node (1) as a single message
and NodeProto.op_type (4) as a repeated field, so the parse concatenates every node's op type
into one list without a Python object per node.

It is a hint, not a reading: a file can make it disagree with the nodes (a node with two
op_type fields and another with none keep the count). A walk that takes it checks the op type
of every node it visits, and only a caller whose result a full walk checks again may take it:
`exportcheck fix`, whose proof inspects the written file.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from exportcheck.readers.onnx.skeletons import skeleton_classes


@cache
def _skeleton() -> Any:
    layout = {
        "Model": [("graph", 7, "Graph")],
        "Graph": [("node", 1, "Node")],
        "Node": [("op_type", 4, "string")],
    }
    return skeleton_classes("exportcheck_op_types", layout, ("Model",))[0]


def main_graph_op_types(serialized: bytes) -> list[str] | None:
    """The op types of the main graph's nodes in file order, or None where the bytes do not
    parse as the skeleton (a walk then reads every node itself)."""
    try:
        return list(_skeleton().FromString(serialized).graph.node.op_type)
    except Exception:  # any refusal of the second parse only costs the shortcut
        return None

"""The ONNX protobuf classes, and the enum numbers and string handling the reader shares."""

from __future__ import annotations

from typing import Any

from onnx import AttributeProto, FunctionProto, GraphProto, ModelProto, NodeProto, TensorProto

__all__ = [
    "AttributeProto",
    "FunctionProto",
    "GraphProto",
    "ModelProto",
    "NodeProto",
    "TensorProto",
]

DEFAULT_DOMAINS = ("", "ai.onnx")
# Plain ints: reading AttributeProto.GRAPH goes through protobuf's enum wrapper on every access.
GRAPH = int(AttributeProto.GRAPH)
GRAPHS = int(AttributeProto.GRAPHS)
SUBGRAPH_TYPES = (GRAPH, GRAPHS)
INT = int(AttributeProto.INT)
FLOAT = int(AttributeProto.FLOAT)
TENSOR = int(AttributeProto.TENSOR)
ATTRIBUTE_TYPES = frozenset(int(v) for v in AttributeProto.AttributeType.values())
EXTERNAL = int(TensorProto.EXTERNAL)


def text(value: str | bytes) -> str:
    """A protobuf string field as text: protobuf hands back bytes where a file's is not UTF-8."""
    return value if isinstance(value, str) else value.decode("utf-8", "backslashreplace")


def texts(values: Any) -> tuple[str, ...]:
    raw = tuple(values)
    for value in raw:
        if type(value) is not str:
            return tuple(map(text, raw))
    return raw

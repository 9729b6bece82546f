"""Constant values the rules read: attribute values, Constant nodes and initializers."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from onnx import helper, numpy_helper

from exportcheck.errors import first_line
from exportcheck.readers.onnx.protos import (
    ATTRIBUTE_TYPES,
    EXTERNAL,
    FLOAT,
    INT,
    SUBGRAPH_TYPES,
    TENSOR,
    AttributeProto,
    NodeProto,
    TensorProto,
    text,
)
from exportcheck.readers.view import Arg


def _attribute_value(attr: AttributeProto) -> Any:
    kind = attr.type
    if kind == FLOAT:  # a scalar read without onnx.helper's dispatch (attribute_arg: ints)
        return attr.f
    if kind in SUBGRAPH_TYPES:
        return None
    if kind == TENSOR and attr.t.data_location == EXTERNAL:
        return None
    return helper.get_attribute_value(attr)


def attribute_arg(attr: AttributeProto, source: str) -> Arg:
    # A function body's attribute can name the caller's attribute instead of holding a value.
    if attr.ref_attr_name:
        return Arg.dynamic(f"{source} {attr.name!r} set by the caller ({attr.ref_attr_name!r})")
    kind = attr.type
    if kind == INT:
        return _scalar_arg(attr.i, source)
    if kind not in ATTRIBUTE_TYPES:
        return Arg.dynamic(f"{source} {attr.name!r} of unknown type {attr.type}")
    return Arg.const(_attribute_value(attr), source=source)


@lru_cache(maxsize=1024)
def _scalar_arg(value: int, source: str) -> Arg:
    """One shared Arg per integer attribute value: mode flags repeat on every node."""
    return Arg.const(value, source=source)


def tensor_arg(tensor: TensorProto, source: str) -> Arg:
    try:
        return Arg.const(numpy_helper.to_array(tensor), source=source)
    except Exception as exc:  # a damaged tensor fails in onnx or numpy in many ways
        cause = first_line(exc, with_type=False)
        return Arg.dynamic(f"{source}, an unreadable tensor ({cause})")


def constant_node_value(node: NodeProto) -> Arg:
    source = f"Constant {node.name!r}"
    for attr in node.attribute:
        name = text(attr.name)
        if name == "value" and attr.type == TENSOR and not attr.ref_attr_name:
            if attr.t.data_location == EXTERNAL:
                return Arg.dynamic("Constant with external data")
            return tensor_arg(attr.t, source)
        if name == "value" or name.startswith("value_"):
            return attribute_arg(attr, source)
    return Arg.dynamic(f"Constant {node.name!r} without a value")

"""Constant values the rules read: attribute values, Constant nodes and initializers.

The rules read scalars (a Dropout's ratio and training_mode, a BatchNormalization's
training_mode or momentum), so a scalar of a plain numeric type is decoded here into a Python
value, without numpy. A tensor of several elements becomes a numpy array (numpy is imported
then); a rarer element type (bfloat16, float8, int4, strings, complex) goes through
onnx.numpy_helper, which imports the onnx package.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from typing import Any

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

# TensorProto.DataType -> (struct format of raw_data, typed field holding the values, numpy
# dtype, Python type). Values ONNX stores in int32_data (bool, 8/16-bit ints, float16 bits)
# are converted from there as numpy_helper does.
_PLAIN_TYPES: dict[int, tuple[str, str, str, type]] = {
    1: ("<f", "float_data", "float32", float),
    2: ("<B", "int32_data", "uint8", int),
    3: ("<b", "int32_data", "int8", int),
    4: ("<H", "int32_data", "uint16", int),
    5: ("<h", "int32_data", "int16", int),
    6: ("<i", "int32_data", "int32", int),
    7: ("<q", "int64_data", "int64", int),
    9: ("<?", "int32_data", "bool", bool),
    10: ("<e", "int32_data", "float16", float),
    11: ("<d", "double_data", "float64", float),
    12: ("<I", "uint64_data", "uint32", int),
    13: ("<Q", "uint64_data", "uint64", int),
}
_FLOAT16 = 10
# More than any tensor a 64-bit address space holds; dims multiplying past it are damaged.
MAX_ELEMENTS = 1 << 62


class _TensorError(ValueError):
    pass


def _element_count(tensor: TensorProto) -> int:
    dims = tensor.dims
    for dim in dims:
        if dim < 0:
            raise _TensorError(f"negative dimension {dim}")
    if 0 in dims:
        return 0
    # A file can declare thousands of huge dims: the product stops growing at the bound, so it
    # stays a small int however many there are.
    count = 1
    for dim in dims:
        count *= dim
        if count > MAX_ELEMENTS:
            raise _TensorError(f"dims declare more than {MAX_ELEMENTS} elements")
    return count


def decode_tensor(tensor: TensorProto) -> Any:
    """A tensor's value: a Python scalar for one element of a plain type, else a numpy array."""
    plain = _PLAIN_TYPES.get(tensor.data_type)
    if plain is None or tensor.HasField("segment"):
        return _decode_with_onnx(tensor)
    fmt, field, dtype, kind = plain
    count = _element_count(tensor)
    raw = tensor.raw_data
    if raw:
        if len(raw) != count * struct.calcsize(fmt):
            raise _TensorError(f"raw_data holds {len(raw)} bytes for {count} elements of {dtype}")
        if count == 1:
            return kind(struct.unpack(fmt, raw)[0])
        import numpy

        return (
            numpy.frombuffer(raw, dtype=numpy.dtype(dtype).newbyteorder("<"))
            .reshape(tuple(tensor.dims))
            .astype(dtype)
        )
    values = getattr(tensor, field)
    if len(values) != count:
        raise _TensorError(f"{field} holds {len(values)} values for {count} elements")
    if count == 1:
        value = values[0]
        if tensor.data_type == _FLOAT16:  # int32_data holds the half's bit pattern
            return float(struct.unpack("<e", struct.pack("<H", value & 0xFFFF))[0])
        return kind(value)
    import numpy

    if tensor.data_type == _FLOAT16:
        bits = numpy.asarray(values, dtype="uint16")
        return bits.view("float16").reshape(tuple(tensor.dims))
    return numpy.asarray(values, dtype=dtype).reshape(tuple(tensor.dims))


def _decode_with_onnx(tensor: TensorProto) -> Any:
    from onnx import numpy_helper

    return numpy_helper.to_array(tensor)


def _attribute_value(attr: AttributeProto) -> Any:
    """An attribute's value as onnx.helper.get_attribute_value gives it (a TENSOR attribute
    stays a TensorProto there too), read without onnx.helper."""
    kind = attr.type
    if kind == FLOAT:
        return attr.f
    if kind in SUBGRAPH_TYPES:
        return None
    if kind == TENSOR:
        return None if attr.t.data_location == EXTERNAL else attr.t
    field = _ATTRIBUTE_FIELDS.get(kind)
    if field is None:
        return None  # UNDEFINED
    value = getattr(attr, field)
    return list(value) if kind in _REPEATED else value


_ATTRIBUTE_FIELDS = {
    int(AttributeProto.STRING): "s",
    int(AttributeProto.SPARSE_TENSOR): "sparse_tensor",
    int(AttributeProto.TYPE_PROTO): "tp",
    int(AttributeProto.FLOATS): "floats",
    int(AttributeProto.INTS): "ints",
    int(AttributeProto.STRINGS): "strings",
    int(AttributeProto.TENSORS): "tensors",
    int(AttributeProto.SPARSE_TENSORS): "sparse_tensors",
    int(AttributeProto.TYPE_PROTOS): "type_protos",
}
_REPEATED = frozenset(
    int(kind)
    for kind in (
        AttributeProto.FLOATS,
        AttributeProto.INTS,
        AttributeProto.STRINGS,
        AttributeProto.TENSORS,
        AttributeProto.SPARSE_TENSORS,
        AttributeProto.TYPE_PROTOS,
    )
)


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
        return Arg.const(decode_tensor(tensor), source=source)
    except Exception as exc:  # a damaged tensor fails in the decoder or numpy in many ways
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

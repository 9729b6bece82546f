"""Skeletons of ONNX's messages: classes that declare only the fields a question needs, parsed
from a model's bytes in C instead of walked in Python.

A skeleton declares each repeated message field it keeps as a single one: protobuf merges the
repeated occurrences of a single message field into one message and concatenates its repeated
fields, so one parse gathers, say, every input of every node of a graph into one list, without
a Python object per node. Wire numbers are onnx.proto's; a field a skeleton does not declare is
skipped as unknown, as onnx's own parse skips a field onnx.proto does not declare, and the
nesting is onnx's own, so bytes that parse as a model parse as a skeleton.
"""

from __future__ import annotations

from typing import Any

# A field's type: a message of the layout (kept single, so its occurrences merge), or one of
# these scalars (kept repeated, so their occurrences concatenate).
_SCALARS = {"bytes": "TYPE_BYTES", "string": "TYPE_STRING"}


def skeleton_classes(
    package: str, layout: dict[str, list[tuple[str, int, str]]], wanted: tuple[str, ...]
) -> tuple[Any, ...]:
    """The classes named in `wanted`, from `layout` ({message: [(field, number, type)]}), in a
    descriptor pool of their own."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    field = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name=f"{package}.proto", package=package, syntax="proto2"
    )
    for message_name, fields in layout.items():
        message = file.message_type.add(name=message_name)
        for name, number, kind in fields:
            if kind in _SCALARS:
                scalar = getattr(field, _SCALARS[kind])
                message.field.add(name=name, number=number, type=scalar, label=field.LABEL_REPEATED)
            else:
                message.field.add(
                    name=name,
                    number=number,
                    type=field.TYPE_MESSAGE,
                    label=field.LABEL_OPTIONAL,
                    type_name=f".{package}.{kind}",
                )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    get_class = getattr(message_factory, "GetMessageClass", None)
    if get_class is None:  # protobuf before 4.22
        get_class = message_factory.MessageFactory(pool).GetPrototype
    return tuple(get_class(pool.FindMessageTypeByName(f"{package}.{name}")) for name in wanted)

"""The shapes torch.export writes its JSON in (torch/_export/serde/schema.py), and a check of a
loaded document against them that names the first field out of shape.

Only types are checked, not meaning: every object field the reader reads has the type torch
writes, every integer fits in 64 bits, every union holds one member. Fields torch adds in a later
minor version, and union members it adds, pass unchecked (the reader ignores them).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
# JSON has no spelling for non-finite numbers: torch writes every float field that holds one as
# exactly these strings (torch/_export/serde/serialize.py, _dataclass_to_dict), a masked fill
# of -inf in attention for one. No other string stands for a number.
NONFINITE_FLOATS = {"Infinity": math.inf, "-Infinity": -math.inf, "NaN": math.nan}


@dataclass(frozen=True)
class Scalar:
    """A JSON leaf: `kind` is one of str, int, float, bool, any."""

    kind: str


@dataclass(frozen=True)
class Nullable:
    shape: Shape


@dataclass(frozen=True)
class ListOf:
    item: Shape


@dataclass(frozen=True)
class MapOf:
    value: Shape


@dataclass(frozen=True)
class Struct:
    """An object with `required` fields that must be present and `optional` ones that may."""

    required: Mapping[str, Shape]
    optional: Mapping[str, Shape] = field(default_factory=dict)


@dataclass(frozen=True)
class OneOf:
    """torch's `_Union`: an object with exactly one member, `{"as_int": 3}`."""

    members: Mapping[str, Shape]


@dataclass(frozen=True)
class Ref:
    """A shape defined further down (Graph holds nodes whose arguments hold graphs)."""

    name: str


Shape = Scalar | Nullable | ListOf | MapOf | Struct | OneOf | Ref


class ShapeError(ValueError):
    """A field that is not what torch writes; `str()` is `path: expected ..., got ...`."""

    def __init__(self, path: str, expected: str, got: str) -> None:
        self.path = path
        super().__init__(f"{path}: expected {expected}, got {got}")


STR = Scalar("str")
INT = Scalar("int")
FLOAT = Scalar("float")
BOOL = Scalar("bool")
ANY = Scalar("any")

_TENSOR = Struct({"name": STR})
_TOKEN = Struct({"name": STR})
_SYM_EXPR = Struct(
    {"expr_str": STR},
    {"hint": Nullable(OneOf({"as_int": INT, "as_bool": BOOL, "as_float": FLOAT}))},
)
SYM_INT = OneOf({"as_expr": _SYM_EXPR, "as_int": INT})
_SYM_FLOAT = OneOf({"as_expr": _SYM_EXPR, "as_float": FLOAT})
_SYM_BOOL = OneOf({"as_expr": _SYM_EXPR, "as_bool": BOOL})
_DEVICE = Struct({"type": STR}, {"index": Nullable(INT)})
_OPTIONAL_TENSOR = OneOf({"as_tensor": _TENSOR, "as_none": ANY})
_CUSTOM_OBJ = Struct({"name": STR, "class_fqn": STR})

ARGUMENT = OneOf(
    {
        "as_none": ANY,  # `true` now, `[]` in older writers
        "as_tensor": _TENSOR,
        "as_tensors": ListOf(_TENSOR),
        "as_int": INT,
        "as_ints": ListOf(INT),
        "as_float": FLOAT,
        "as_floats": ListOf(FLOAT),
        "as_string": STR,
        "as_strings": ListOf(STR),
        "as_sym_int": OneOf({"as_name": STR, "as_int": INT}),
        "as_sym_ints": ListOf(OneOf({"as_name": STR, "as_int": INT})),
        "as_scalar_type": INT,
        "as_memory_format": INT,
        "as_layout": INT,
        "as_device": _DEVICE,
        "as_bool": BOOL,
        "as_bools": ListOf(BOOL),
        "as_sym_bool": OneOf({"as_name": STR, "as_bool": BOOL}),
        "as_sym_bools": ListOf(OneOf({"as_name": STR, "as_bool": BOOL})),
        "as_graph": Struct({"name": STR, "graph": Ref("Graph")}),
        "as_optional_tensors": ListOf(_OPTIONAL_TENSOR),
        "as_custom_obj": _CUSTOM_OBJ,
        "as_operator": STR,
        "as_sym_float": OneOf({"as_name": STR, "as_float": FLOAT}),
        "as_sym_floats": ListOf(OneOf({"as_name": STR, "as_float": FLOAT})),
        "as_optional_tensor": _OPTIONAL_TENSOR,
        "as_complex": Struct({"real": FLOAT, "imag": FLOAT}),
        "as_nested_tensors": ListOf(ListOf(_TENSOR)),
        "as_int_lists": ListOf(ListOf(INT)),
        "as_string_to_argument": MapOf(Ref("Argument")),
        "as_float_lists": ListOf(ListOf(FLOAT)),
    }
)

TENSOR_META = Struct(
    {"dtype": INT, "sizes": ListOf(SYM_INT)},
    {
        "requires_grad": BOOL,
        "device": _DEVICE,
        "strides": ListOf(SYM_INT),
        "storage_offset": SYM_INT,
        "layout": INT,
    },
)

_NODE = Struct(
    {
        "target": STR,
        "inputs": ListOf(Struct({"name": STR, "arg": ARGUMENT}, {"kind": Nullable(INT)})),
        "outputs": ListOf(ARGUMENT),
    },
    {"metadata": MapOf(STR), "is_hop_single_tensor_return": Nullable(BOOL), "name": Nullable(STR)},
)

GRAPH = Struct(
    {"inputs": ListOf(ARGUMENT), "outputs": ListOf(ARGUMENT), "nodes": ListOf(_NODE)},
    {
        "tensor_values": MapOf(TENSOR_META),
        "sym_int_values": MapOf(SYM_INT),
        "sym_bool_values": MapOf(_SYM_BOOL),
        "sym_float_values": MapOf(_SYM_FLOAT),
        "is_single_tensor_return": BOOL,
        "custom_obj_values": MapOf(_CUSTOM_OBJ),
    },
)


def _arg_spec(**names: Shape) -> Struct:
    return Struct(names)


_INPUT_SPEC = OneOf(
    {
        "user_input": _arg_spec(arg=ARGUMENT),
        "parameter": _arg_spec(arg=_TENSOR, parameter_name=STR),
        "buffer": Struct({"arg": _TENSOR, "buffer_name": STR}, {"persistent": Nullable(BOOL)}),
        "tensor_constant": _arg_spec(arg=_TENSOR, tensor_constant_name=STR),
        "custom_obj": _arg_spec(arg=_CUSTOM_OBJ, custom_obj_name=STR),
        "token": _arg_spec(arg=_TOKEN),
        "constant_input": _arg_spec(
            name=STR,
            value=OneOf(
                {
                    "as_none": ANY,
                    "as_int": INT,
                    "as_float": FLOAT,
                    "as_string": STR,
                    "as_bool": BOOL,
                }
            ),
        ),
    }
)
_OUTPUT_SPEC = OneOf(
    {
        "user_output": _arg_spec(arg=ARGUMENT),
        "loss_output": _arg_spec(arg=_TENSOR),
        "buffer_mutation": _arg_spec(arg=_TENSOR, buffer_name=STR),
        "gradient_to_parameter": _arg_spec(arg=_TENSOR, parameter_name=STR),
        "gradient_to_user_input": _arg_spec(arg=_TENSOR, user_input_name=STR),
        "user_input_mutation": _arg_spec(arg=_TENSOR, user_input_name=STR),
        "token": _arg_spec(arg=_TOKEN),
        "parameter_mutation": _arg_spec(arg=_TENSOR, parameter_name=STR),
    }
)

SCHEMA_VERSION = Struct({"major": INT, "minor": INT})
EXPORTED_PROGRAM = Struct(
    {
        "graph_module": Struct(
            {
                "graph": GRAPH,
                "signature": Struct(
                    {"input_specs": ListOf(_INPUT_SPEC), "output_specs": ListOf(_OUTPUT_SPEC)}
                ),
            },
            {"metadata": MapOf(STR)},
        ),
        "schema_version": SCHEMA_VERSION,
    },
    {"torch_version": STR, "opset_version": MapOf(INT), "verifiers": ListOf(STR)},
)

PAYLOAD_CONFIG = Struct(
    {
        "config": MapOf(
            Struct(
                {"path_name": STR},
                {"is_param": BOOL, "use_pickle": BOOL, "tensor_meta": Nullable(TENSOR_META)},
            )
        )
    }
)

_NAMED = {"Graph": GRAPH, "Argument": ARGUMENT}

_EXPECTED = {
    "str": "a string",
    "int": "a 64-bit integer",
    "float": "a number",
    "bool": "a boolean",
}

# The path of a value being checked, as a chain of (parent, key): built only when one is wrong.
_Path: TypeAlias = "tuple[_Path, str | int] | None"


def path_text(path: _Path, root: str = "") -> str:
    keys: list[str | int] = []
    while path is not None:
        path, key = path
        keys.append(key)
    text = root
    for key in reversed(keys):
        if isinstance(key, int):
            text += f"[{key}]"
        elif key.isidentifier():
            text += f".{key}" if text else key
        else:
            text += f"[{key[:40]!r}]"
    return text or "(top level)"


def describe(value: Any) -> str:
    """A JSON value's type in words, never the value itself (it can be megabytes)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer" if INT64_MIN <= value <= INT64_MAX else "an integer beyond 64 bits"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an empty object" if not value else "an object"
    return type(value).__name__


def _scalar_fits(kind: str, value: Any) -> bool:
    kind_of = type(value)
    if kind == "str":
        return kind_of is str
    if kind == "bool":
        return kind_of is bool
    if kind == "int":
        return kind_of is int and INT64_MIN <= value <= INT64_MAX
    if kind == "float":
        if kind_of is str:
            return value in NONFINITE_FLOATS
        return kind_of is float or (kind_of is int and INT64_MIN <= value <= INT64_MAX)
    return True


_Child = tuple[Any, Any, "Shape"]  # key, value, shape


def check(document: Any, shape: Shape, root: str = "") -> None:
    """Raises ShapeError naming the first value (depth first) that is not of its shape.

    Iterative, so a deeply nested document costs no Python stack; each container is walked by
    an iterator, so the memory is that of the nesting, not of the document."""
    stack: list[tuple[Iterator[_Child], _Path]] = [(iter([(None, document, shape)]), None)]
    while stack:
        children, parent = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            continue
        key, value, shape = child
        path = parent if key is None else (parent, key)
        shape = _resolved(shape, value)
        if shape is None:
            continue
        if type(shape) is Scalar:
            if not _scalar_fits(shape.kind, value):
                raise ShapeError(path_text(path, root), _EXPECTED[shape.kind], describe(value))
        elif type(shape) is ListOf:
            if type(value) is not list:
                raise ShapeError(path_text(path, root), "a list", describe(value))
            item = shape.item
            if type(item) is Scalar:
                _check_scalars(value, item.kind, path, root)
            else:
                stack.append((_items(value, item), path))
        else:
            if type(value) is not dict:
                raise ShapeError(path_text(path, root), "an object", describe(value))
            stack.append((_members(value, shape, path, root), path))


def _resolved(shape: Shape, value: Any) -> Shape | None:
    """The shape a value must have, named shapes looked up; None for a null where allowed."""
    while type(shape) is Nullable or type(shape) is Ref:
        if type(shape) is Ref:
            shape = _NAMED[shape.name]
        elif value is None:
            return None
        else:
            shape = shape.shape
    return shape


def _items(values: list, item: Shape) -> Iterator[_Child]:
    return ((position, value, item) for position, value in enumerate(values))


def _check_scalars(values: list, kind: str, path: _Path, root: str) -> None:
    for position, value in enumerate(values):
        if not _scalar_fits(kind, value):
            raise ShapeError(path_text((path, position), root), _EXPECTED[kind], describe(value))


def _members(value: dict, shape: Shape, path: _Path, root: str) -> Iterator[_Child]:
    if type(shape) is MapOf:
        member = shape.value
        return ((k, v, member) for k, v in value.items())
    if type(shape) is Struct:
        for name, member in shape.required.items():
            if name not in value:
                raise ShapeError(
                    path_text((path, name), root), _expected(member), "nothing (missing)"
                )
        present = [(n, value[n], m) for n, m in shape.required.items()]
        present += [(n, value[n], m) for n, m in shape.optional.items() if n in value]
        return iter(present)
    assert type(shape) is OneOf
    if len(value) != 1:
        raise ShapeError(path_text(path, root), "an object of one member", describe(value))
    [(name, member)] = value.items()
    known = shape.members.get(name)
    # A member of a newer minor version is left to the reader.
    return iter([(name, member, known)] if known is not None else [])


def _expected(shape: Shape) -> str:
    if type(shape) is Scalar:
        return _EXPECTED.get(shape.kind, "a value")
    if type(shape) is ListOf:
        return "a list"
    if type(shape) is Nullable:
        return _expected(shape.shape)
    return "an object"


def json_float(value: Any) -> Any:
    """A float field's value, with torch's spelling of a non-finite number read back (a
    checked document holds no other string where a float goes)."""
    if type(value) is str:
        return NONFINITE_FLOATS.get(value, value)
    return value

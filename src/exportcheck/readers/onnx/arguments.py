"""A node's arguments by schema name, each resolved to a constant only when a rule asks."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from exportcheck.readers.onnx.constants import attribute_arg
from exportcheck.readers.onnx.protos import SUBGRAPH_TYPES, NodeProto, text
from exportcheck.readers.onnx.scopes import Scope, resolve_value
from exportcheck.readers.view import Arg

# Input names of the standard operators the graph rules read, from the opset that gave them
# (a test checks them against onnx.defs). Asking onnx.defs builds onnx's whole operator
# registry on first use: 10 ms, as long as a 40k-node inspection's own work.
RULE_OP_INPUTS: dict[str, tuple[tuple[int, tuple[str, ...]], ...]] = {
    "BatchNormalization": (
        (1, ("X", "scale", "B", "mean", "var")),
        (14, ("X", "scale", "B", "input_mean", "input_var")),
    ),
    "Bernoulli": ((15, ("input",)),),
    "Dropout": ((1, ("data",)), (12, ("data", "ratio", "training_mode"))),
    "Multinomial": ((7, ("input",)),),
    "RandomNormal": ((1, ()),),
    "RandomNormalLike": ((1, ("input",)),),
    "RandomUniform": ((1, ()),),
    "RandomUniformLike": ((1, ("input",)),),
}


@lru_cache(maxsize=512)
def input_names(op_type: str, domain: str, opset: int) -> tuple[str, ...]:
    """The formal input names of an operator at an opset; () for one onnx does not know."""
    versions = RULE_OP_INPUTS.get(op_type) if not domain else None
    if versions is not None:
        names: tuple[str, ...] = ()
        for since, formal in versions:
            if since <= opset:
                names = formal
        return names
    try:
        # Only a rule reading a neighbour's argument by name gets here: it imports onnx.
        import onnx.defs

        schema = onnx.defs.get_schema(op_type, opset, domain)
    except Exception:
        return ()
    return tuple(formal.name for formal in schema.inputs)


class LazyArgs:
    """A node's arguments by schema name, each resolved only when a rule asks for it (the
    read-only Mapping protocol, without the ABC's per-lookup overhead)."""

    __slots__ = ("_node", "_scope", "_operator", "_names_read", "_cache", "_keys")

    def __init__(self, node: NodeProto, scope: Scope, operator: tuple[str, str, int]) -> None:
        self._node = node
        self._scope = scope
        self._operator = operator  # op type, domain, opset: the schema's input names on demand
        self._names_read: tuple[str, ...] | None = None
        self._cache: dict[str, Arg | None] | None = None
        self._keys: list[str] | None = None

    def get(self, key: str, default: Arg | None = None) -> Arg | None:
        cache = self._cache
        if cache is None:
            cache = self._cache = {}
        elif key in cache:
            arg = cache[key]
            return default if arg is None else arg
        arg = cache[key] = self._lookup(key)
        return default if arg is None else arg

    def __getitem__(self, key: str) -> Arg:
        arg = self.get(key)
        if arg is None:
            raise KeyError(key)
        return arg

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def keys(self) -> list[str]:
        return list(self)

    def items(self) -> list[tuple[str, Arg]]:
        return [(key, self[key]) for key in self]

    @property
    def _names(self) -> tuple[str, ...]:
        if self._names_read is None:
            self._names_read = input_names(*self._operator)
        return self._names_read

    def _positions(self) -> dict[str, int]:
        names = self._names_read if self._names_read is not None else self._names
        return {
            (names[i] if i < len(names) else f"input{i}"): i
            for i, value in enumerate(self._node.input)
            if value
        }

    def _lookup(self, key: str) -> Arg | None:
        names = self._names_read if self._names_read is not None else self._names
        position: int | None = None
        if key in names:
            position = names.index(key)
        elif key.startswith("input"):
            position = self._positions().get(key)
        if position is not None:
            inputs = self._node.input
            if position < len(inputs) and (value := inputs[position]):
                return resolve_value(value if type(value) is str else text(value), self._scope)
        for attr in self._node.attribute:
            name = attr.name
            if (name if type(name) is str else text(name)) == key and (
                attr.type not in SUBGRAPH_TYPES
            ):
                return attribute_arg(attr, "attribute")
        return None

    def at_position(self, index: int) -> Arg | None:
        """The input at `index`, resolved without the schema's names."""
        inputs = self._node.input
        if index < len(inputs) and (value := inputs[index]):
            return resolve_value(value if type(value) is str else text(value), self._scope)
        return None

    def __iter__(self) -> Iterator[str]:
        if self._keys is None:
            keys = list(self._positions())
            keys += [
                name
                for attr in self._node.attribute
                if attr.type not in SUBGRAPH_TYPES and (name := text(attr.name)) not in keys
            ]
            self._keys = keys
        return iter(self._keys)

    def __len__(self) -> int:
        return sum(1 for _ in self)

"""Reads an ONNX file into an ArtifactView without ever loading its weights."""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import onnx
from google.protobuf.message import DecodeError
from onnx import AttributeProto, GraphProto, NodeProto, TensorProto, numpy_helper

from exportcheck.errors import UnreadableArtifactError, UnsafeExternalDataError, first_line
from exportcheck.readers.onnx.operators import PLAIN_OPERATORS
from exportcheck.readers.view import (
    Arg,
    ArtifactKind,
    ArtifactView,
    GraphIndex,
    NodeView,
    Note,
)

_DEFAULT_DOMAINS = ("", "ai.onnx")
# Plain ints: reading AttributeProto.GRAPH goes through protobuf's enum wrapper on every access.
_GRAPH = int(AttributeProto.GRAPH)
_GRAPHS = int(AttributeProto.GRAPHS)
_SUBGRAPH_TYPES = (_GRAPH, _GRAPHS)
_INT = int(AttributeProto.INT)
_FLOAT = int(AttributeProto.FLOAT)
_TENSOR = int(AttributeProto.TENSOR)
# The standard operators that hold subgraphs (a test derives them from onnx.defs), and Constant.
# Any other standard node is read only by op type: the checker and every runtime refuse a
# subgraph attribute its schema does not declare, so nothing under it can run.
SUBGRAPH_OPS = frozenset({"If", "Loop", "Scan", "SequenceMap"})
_SCOPE_OPS = SUBGRAPH_OPS | {"Constant"}
# What the walk does with a node, decided once per op type: a rule wants it; or it is a
# standard operator without subgraphs and nothing more is read; or its attributes are read (a
# subgraph holder, a Constant); or its domain decides: an unknown name in the default domain is
# read by op type, anywhere else it may be a custom subgraph holder and its attributes are read.
_MATCH, _PLAIN, _READ, _BY_DOMAIN = "match", "plain", "read", "by domain"
# Input names of the standard operators the graph rules read, from the opset that gave them
# (a test checks them against onnx.defs). Asking onnx.defs builds onnx's whole operator
# registry on first use: 10 ms, as long as a 40k-node inspection's own work.
_RULE_OP_INPUTS: dict[str, tuple[tuple[int, tuple[str, ...]], ...]] = {
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
_ATTRIBUTE_TYPES = frozenset(int(v) for v in AttributeProto.AttributeType.values())
_EXTERNAL = TensorProto.EXTERNAL


class _Scope:
    """One graph or function body: the names it defines (initializers, Constant outputs, inputs,
    other node outputs, which hide an outer definition of the same name) and its parent.

    A large model has tens of thousands of If/Loop bodies, so everything but the walk's own
    bookkeeping is built on first use: the name, the input set, the initializer table.
    """

    __slots__ = (
        "_name",
        "parent",
        "graph",
        "opsets",
        "constants",
        "_initializers",
        "_inputs",
        "_computed",
        "resolved",
        "_label",
    )

    def __init__(
        self,
        graph: Any,
        parent: _Scope | None,
        opsets: dict[str, int],
        name: str | None = None,
        label: tuple[Any, str, int | None] | None = None,
    ) -> None:
        self.graph = graph
        self.parent = parent
        self.opsets = opsets
        self._name = name
        self._label = label
        self.constants: dict[str, NodeProto] = {}
        self._initializers: dict[str, TensorProto] | None = None
        self._inputs: set[str] | None = None
        self._computed: set[str] | None = None
        self.resolved: dict[str, Arg] = {}

    @property
    def name(self) -> str:
        if self._name is None:
            node, attribute, position = self._label  # type: ignore[misc]
            owner = _text(node.name) or _text(node.op_type)
            suffix = f"[{position}]" if position is not None else ""
            parent = self.parent.name if self.parent is not None else ""
            self._name = f"{parent}/{owner}.{_text(attribute)}{suffix}"
        return self._name

    @property
    def nodes(self) -> Any:
        return self.graph.node

    @property
    def initializers(self) -> dict[str, TensorProto]:
        if self._initializers is None:
            tensors = getattr(self.graph, "initializer", ())
            self._initializers = {tensor.name: tensor for tensor in tensors}
        return self._initializers

    @property
    def inputs(self) -> set[str]:
        if self._inputs is None:
            self._inputs = {_text(getattr(value, "name", value)) for value in self.graph.input}
        return self._inputs

    def computes(self, name: str) -> bool:
        """Whether a non-Constant node of this scope outputs `name` (built on first ask, so
        the walk itself stays a single cheap pass)."""
        if self._computed is None:
            self._computed = {
                _text(output)
                for node in self.nodes
                if node.op_type != "Constant"
                for output in node.output
            }
        return name in self._computed


def load_model(path: str) -> onnx.ModelProto:
    """Parses the protobuf (never the external weights) and rejects what is not an ONNX model."""
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise UnreadableArtifactError(f"cannot read file ({exc.strerror})", subject=path) from None
    if size == 0:
        raise UnreadableArtifactError("empty file, not an ONNX model", subject=path)
    try:
        with open(path, "rb") as handle:
            model = onnx.load_model(handle, load_external_data=False)
    except (DecodeError, RecursionError, ValueError, TypeError, MemoryError) as exc:
        cause = first_line(exc, with_type=False)
        raise UnreadableArtifactError(
            f"not a valid ONNX protobuf ({cause})", subject=path
        ) from None
    except OSError as exc:
        raise UnreadableArtifactError(f"cannot read file ({exc.strerror})", subject=path) from None
    if not model.HasField("graph") or model.ir_version <= 0 or not model.opset_import:
        raise UnreadableArtifactError(
            "parses as protobuf but is not an ONNX model (no graph, IR version or opset)",
            subject=path,
        )
    if model.ir_version > onnx.IR_VERSION:
        raise UnreadableArtifactError(
            f"IR version {model.ir_version} is newer than the installed onnx "
            f"{onnx.__version__} knows (up to {onnx.IR_VERSION})",
            subject=path,
        )
    newest = onnx.defs.onnx_opset_version()
    for opset in model.opset_import:
        if opset.domain in _DEFAULT_DOMAINS and opset.version > newest:
            raise UnreadableArtifactError(
                f"opset {opset.version} is newer than the installed onnx "
                f"{onnx.__version__} knows (up to {newest})",
                subject=path,
            )
    return model


def _text(value: str | bytes) -> str:
    """A protobuf string field as text: protobuf hands back bytes where a file's is not UTF-8."""
    return value if isinstance(value, str) else value.decode("utf-8", "backslashreplace")


def external_data_location(tensor: TensorProto) -> str | None:
    for entry in tensor.external_data:
        if _text(entry.key) == "location":
            return _text(entry.value)
    return None


def check_external_location(path: str, location: str, tensor_name: str) -> str:
    """Returns the side file's absolute path, or refuses a location outside the model's folder."""
    base = os.path.dirname(os.path.abspath(path))
    if not location or "\0" in location:
        raise UnsafeExternalDataError(
            f"external data of tensor {tensor_name!r} has no usable location ({location!r}); "
            "refused",
            subject=path,
        )
    if (
        os.path.isabs(location)
        or location.startswith(("/", "\\"))
        or (len(location) > 1 and location[1] == ":")
    ):
        raise UnsafeExternalDataError(
            f"external data of tensor {tensor_name!r} has absolute location {location!r}; "
            "refused (it must be relative to the model's folder)",
            subject=path,
        )
    resolved = os.path.realpath(os.path.join(base, location))
    if os.path.commonpath([resolved, os.path.realpath(base)]) != os.path.realpath(base):
        raise UnsafeExternalDataError(
            f"external data of tensor {tensor_name!r} points outside the model's folder "
            f"({location!r}); refused",
            subject=path,
        )
    return resolved


@lru_cache(maxsize=512)
def _input_names(op_type: str, domain: str, opset: int) -> tuple[str, ...]:
    versions = _RULE_OP_INPUTS.get(op_type) if not domain else None
    if versions is not None:
        names: tuple[str, ...] = ()
        for since, formal in versions:
            if since <= opset:
                names = formal
        return names
    try:
        schema = onnx.defs.get_schema(op_type, opset, domain)
    except Exception:
        return ()
    return tuple(formal.name for formal in schema.inputs)


def _role(op_type: str | bytes, wanted_types: frozenset[str]) -> str:
    if op_type in wanted_types:
        return _MATCH
    if op_type in _SCOPE_OPS or not isinstance(op_type, str):
        return _READ
    return _PLAIN if op_type in PLAIN_OPERATORS else _BY_DOMAIN


def _attribute_value(attr: AttributeProto) -> Any:
    kind = attr.type
    if kind == _FLOAT:  # a scalar read without onnx.helper's dispatch (_attribute_arg: ints)
        return attr.f
    if kind in _SUBGRAPH_TYPES:
        return None
    if kind == _TENSOR and attr.t.data_location == _EXTERNAL:
        return None
    return onnx.helper.get_attribute_value(attr)


def _attribute_arg(attr: AttributeProto, source: str) -> Arg:
    # A function body's attribute can name the caller's attribute instead of holding a value.
    if attr.ref_attr_name:
        return Arg.dynamic(f"{source} {attr.name!r} set by the caller ({attr.ref_attr_name!r})")
    kind = attr.type
    if kind == _INT:
        return _scalar_arg(attr.i, source)
    if kind not in _ATTRIBUTE_TYPES:
        return Arg.dynamic(f"{source} {attr.name!r} of unknown type {attr.type}")
    return Arg.const(_attribute_value(attr), source=source)


@lru_cache(maxsize=1024)
def _scalar_arg(value: int, source: str) -> Arg:
    """One shared Arg per integer attribute value: mode flags repeat on every node."""
    return Arg.const(value, source=source)


def _tensor_arg(tensor: TensorProto, source: str) -> Arg:
    try:
        return Arg.const(numpy_helper.to_array(tensor), source=source)
    except Exception as exc:  # a damaged tensor fails in onnx or numpy in many ways
        cause = first_line(exc, with_type=False)
        return Arg.dynamic(f"{source}, an unreadable tensor ({cause})")


def _constant_node_value(node: NodeProto) -> Arg:
    source = f"Constant {node.name!r}"
    for attr in node.attribute:
        name = _text(attr.name)
        if name == "value" and attr.type == _TENSOR and not attr.ref_attr_name:
            if attr.t.data_location == _EXTERNAL:
                return Arg.dynamic("Constant with external data")
            return _tensor_arg(attr.t, source)
        if name == "value" or name.startswith("value_"):
            return _attribute_arg(attr, source)
    return Arg.dynamic(f"Constant {node.name!r} without a value")


def resolve_value(name: str, scope: _Scope) -> Arg:
    """Resolves a value name to a constant through the scope chain, or says where it comes from.
    A scope remembers what it resolved: exporters share one constant among many nodes."""
    arg = scope.resolved.get(name)
    if arg is None:
        arg = scope.resolved[name] = _resolve(name, scope)
    return arg


def _resolve(name: str, scope: _Scope) -> Arg:
    current: _Scope | None = scope
    while current is not None:
        node = current.constants.get(name)
        if node is not None:
            return _constant_node_value(node)
        tensor = current.initializers.get(name)
        if tensor is not None:
            if tensor.data_location == _EXTERNAL:
                return Arg.dynamic(f"initializer {name!r} stored in external data")
            return _tensor_arg(tensor, f"initializer {name!r}")
        if name in current.inputs:
            if isinstance(current.graph, onnx.FunctionProto):
                where = "function input"
            elif current.parent is None:
                where = "graph input"
            else:
                where = f"input of scope {current.name}"
            return Arg.dynamic(f"{where} {name!r}")
        if current.computes(name):
            break
        current = current.parent
    return Arg.dynamic(f"computed value {name!r}")


def module_path_of(node: NodeProto, node_name: str) -> str | None:
    """The PyTorch module a node came from, as the dynamo or the legacy exporter recorded it
    (`node_name` is the node's name as text, which the caller has already read)."""
    name_scopes = namespace = None
    for prop in node.metadata_props:
        key = prop.key
        if key == "pkg.torch.onnx.name_scopes" and name_scopes is None:
            name_scopes = prop.value
        elif key == "namespace" and namespace is None:
            namespace = prop.value
    if name_scopes is not None:
        try:
            scopes = ast.literal_eval(_text(name_scopes))
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            scopes = None
        # Metadata is free text: anything but a list of names is ignored, not trusted.
        if isinstance(scopes, (list, tuple)) and all(isinstance(s, str) for s in scopes):
            modules = [s for s in scopes[:-1] if s]
            return modules[-1] if modules else None
    if namespace is not None:
        names = [part.split(":", 1)[0].strip() for part in _text(namespace).split("/")]
        modules = [n for n in names[1:-1] if n]
        return modules[-1] if modules else None
    if node_name.startswith("/"):
        path = ""
        for segment in node_name.strip("/").split("/")[:-1]:
            if path and not segment.startswith(path + "."):
                path = f"{path}.{segment}"
            else:
                path = segment
        return path or None
    return None


def _opset_versions(model: onnx.ModelProto) -> dict[str, int]:
    versions = {opset.domain: opset.version for opset in model.opset_import}
    if "ai.onnx" in versions and "" not in versions:
        versions[""] = versions["ai.onnx"]
    return versions


class _LazyArgs:
    """A node's arguments by schema name, each resolved only when a rule asks for it (the
    read-only Mapping protocol, without the ABC's per-lookup overhead)."""

    __slots__ = ("_node", "_scope", "_names", "_cache", "_keys")

    def __init__(self, node: NodeProto, scope: _Scope, names: tuple[str, ...]) -> None:
        self._node = node
        self._scope = scope
        self._names = names
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

    def _positions(self) -> dict[str, int]:
        names = self._names
        return {
            (names[i] if i < len(names) else f"input{i}"): i
            for i, value in enumerate(self._node.input)
            if value
        }

    def _lookup(self, key: str) -> Arg | None:
        names = self._names
        position: int | None = None
        if key in names:
            position = names.index(key)
        elif key.startswith("input"):
            position = self._positions().get(key)
        if position is not None:
            inputs = self._node.input
            if position < len(inputs) and (value := inputs[position]):
                return resolve_value(value if type(value) is str else _text(value), self._scope)
        for attr in self._node.attribute:
            name = attr.name
            if (name if type(name) is str else _text(name)) == key and (
                attr.type not in _SUBGRAPH_TYPES
            ):
                return _attribute_arg(attr, "attribute")
        return None

    def __iter__(self) -> Iterator[str]:
        if self._keys is None:
            keys = list(self._positions())
            keys += [
                name
                for attr in self._node.attribute
                if attr.type not in _SUBGRAPH_TYPES and (name := _text(attr.name)) not in keys
            ]
            self._keys = keys
        return iter(self._keys)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _texts(values: Any) -> tuple[str, ...]:
    raw = tuple(values)
    for value in raw:
        if type(value) is not str:
            return tuple(map(_text, raw))
    return raw


_UNREAD: Any = object()


class _OnnxNodeView(NodeView):
    """A NodeView that reads its inputs, outputs and module from the NodeProto on first use."""

    __slots__ = ("_proto",)

    def __init__(
        self,
        proto: NodeProto,
        scope: str,
        name: str,
        op: str,
        args: _LazyArgs,
        index: GraphIndex | None,
    ) -> None:
        super().__init__(ArtifactKind.ONNX, scope, name, op, _UNREAD, _UNREAD, args, _UNREAD, index)
        self._proto = proto

    @property
    def inputs(self) -> tuple[str, ...]:
        if self._inputs is _UNREAD:
            self._inputs = _texts(self._proto.input)
        return self._inputs

    @property
    def outputs(self) -> tuple[str, ...]:
        if self._outputs is _UNREAD:
            self._outputs = _texts(self._proto.output)
        return self._outputs

    @property
    def module(self) -> str | None:
        if self._module is _UNREAD:
            self._module = module_path_of(self._proto, self.name)
        return self._module


def _node_view(node: NodeProto, scope: _Scope, index: GraphIndex | None) -> NodeView:
    op_type, domain, name = node.op_type, node.domain, node.name
    if type(op_type) is not str:
        op_type = _text(op_type)
    if domain and domain not in _DEFAULT_DOMAINS:
        domain = _text(domain)
        op = f"{domain}::{op_type}"
    else:
        domain, op = "", op_type
    if type(name) is not str:
        name = _text(name)
    names = _input_names(op_type, domain, scope.opsets.get(domain, 1))
    return _OnnxNodeView(
        node,
        scope.name,
        name or f"{op_type}({', '.join(_texts(node.output))})",
        op,
        _LazyArgs(node, scope, names),
        index,
    )


def _scope_index(scope: _Scope) -> GraphIndex:
    return GraphIndex(scope.name, lambda: [_node_view(node, scope, None) for node in scope.nodes])


_Label = tuple[Any, str, int | None]  # the node holding a subgraph, its attribute, position
_Pending = tuple[Any, _Scope | None, _Label | None, _Scope | None]


def _subgraph_scope(graph: GraphProto, parent: _Scope | None, label: _Label | None) -> _Scope:
    assert parent is not None and label is not None  # roots come with their scope made
    return _Scope(graph, parent, parent.opsets, label=label)


def read_onnx(path: str, wanted: frozenset[str]) -> ArtifactView:
    """Walks the main graph, every nested subgraph and every model-local function once."""
    model = load_model(path)
    opsets = _opset_versions(model)
    wanted_types = frozenset(op.rsplit("::", 1)[-1] for op in wanted)
    notes: list[Note] = []
    missing: dict[str, str] = {}
    views: list[NodeView] = []
    node_count = 0
    scope_count = 0

    def check_initializers(graph: GraphProto, scope: _Scope) -> None:
        for tensor in graph.initializer:
            if tensor.data_location != _EXTERNAL:
                continue
            location = external_data_location(tensor) or ""
            resolved = check_external_location(path, location, tensor.name)
            if location not in missing and not os.path.exists(resolved):
                missing[location] = scope.name

    roots = [_Scope(model.graph, None, opsets, name="main")]
    for function in model.functions:
        fname = (
            f"function {function.domain}::{function.name}"
            if function.domain
            else f"function {function.name}"
        )
        fopsets = dict(opsets)
        fopsets.update({o.domain: o.version for o in function.opset_import})
        roots.append(_Scope(function, None, fopsets, name=fname))

    # A subgraph waits on the stack as (graph, parent scope, label, None); its _Scope is made
    # only once something in it needs one (a match, a Constant, a nested subgraph, a weight
    # file): most If/Loop bodies need none.
    stack: list[_Pending] = [(root.graph, None, None, root) for root in reversed(roots)]
    function_type = onnx.FunctionProto
    roles: dict[str, str] = {}
    while stack:
        graph, parent, label, scope = stack.pop()
        scope_count += 1
        if type(graph) is not function_type and graph.initializer:
            if scope is None:
                scope = _subgraph_scope(graph, parent, label)
            check_initializers(graph, scope)
        nodes = graph.node
        node_count += len(nodes)
        hits: list[NodeProto] = []
        for node in nodes:
            op_type = node.op_type
            role = roles.get(op_type)
            if role is None:
                role = roles[op_type] = _role(op_type, wanted_types)
            if role is _PLAIN:
                continue
            if role is _MATCH:
                hits.append(node)
                if not node.domain:
                    continue
            elif role is _BY_DOMAIN and not node.domain:
                continue
            if scope is None:
                scope = _subgraph_scope(graph, parent, label)
            if op_type == "Constant" and len(node.output) == 1:
                scope.constants[node.output[0]] = node
            for attr in node.attribute:
                kind = attr.type
                if kind == _GRAPH:
                    stack.append((attr.g, scope, (node, attr.name, None), None))
                elif kind == _GRAPHS:
                    for i, sub in enumerate(attr.graphs):
                        stack.append((sub, scope, (node, attr.name, i), None))
        if hits:
            if scope is None:
                scope = _subgraph_scope(graph, parent, label)
            index = _scope_index(scope)
            for node in hits:
                view = _node_view(node, scope, index)
                if view.op in wanted:
                    views.append(view)

    for location, scope_name in missing.items():
        notes.append(
            Note(
                code="missing-external-data",
                message=f"external data file {location!r} is missing; weights were not needed "
                "for static inspection, but the model cannot run",
                scope=scope_name,
            )
        )
    return ArtifactView(
        path=path,
        kind=ArtifactKind.ONNX,
        nodes=tuple(views),
        notes=tuple(notes),
        node_count=node_count,
        scope_count=scope_count,
    )

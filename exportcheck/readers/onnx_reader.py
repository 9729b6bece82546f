"""Reads an ONNX file into an ArtifactView without ever loading its weights."""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import onnx
from google.protobuf.message import DecodeError
from onnx import AttributeProto, GraphProto, NodeProto, TensorProto, numpy_helper

from exportcheck.errors import UnreadableArtifactError, UnsafeExternalDataError
from exportcheck.graphview import (
    Arg,
    ArtifactKind,
    ArtifactView,
    GraphIndex,
    NodeView,
    Note,
)

_DEFAULT_DOMAINS = ("", "ai.onnx")
_SUBGRAPH_TYPES = (AttributeProto.GRAPH, AttributeProto.GRAPHS)
_EXTERNAL = TensorProto.EXTERNAL


@dataclass
class _Scope:
    """Names a scope defines: initializers, Constant outputs, graph inputs and other node
    outputs (which hide an outer definition of the same name), plus its parent."""

    name: str
    parent: _Scope | None
    initializers: dict[str, TensorProto] = field(default_factory=dict)
    constants: dict[str, NodeProto] = field(default_factory=dict)
    inputs: set[str] = field(default_factory=set)
    computed: set[str] = field(default_factory=set)
    nodes: Any = ()
    opsets: dict[str, int] = field(default_factory=dict)


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
        cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
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


def iter_graphs(graph: GraphProto, scope: str) -> Iterator[tuple[GraphProto, str]]:
    """Every graph nested in `graph` (If/Loop/Scan bodies, any GRAPH/GRAPHS attribute), any depth."""
    stack = [(graph, scope)]
    while stack:
        current, name = stack.pop()
        yield current, name
        for node in current.node:
            for attr in node.attribute:
                if attr.type == AttributeProto.GRAPH:
                    stack.append((attr.g, f"{name}/{node.name or node.op_type}.{attr.name}"))
                elif attr.type == AttributeProto.GRAPHS:
                    for i, sub in enumerate(attr.graphs):
                        stack.append((sub, f"{name}/{node.name or node.op_type}.{attr.name}[{i}]"))


@lru_cache(maxsize=512)
def _input_names(op_type: str, domain: str, opset: int) -> tuple[str, ...]:
    try:
        schema = onnx.defs.get_schema(op_type, opset, domain)
    except Exception:
        return ()
    return tuple(formal.name for formal in schema.inputs)


def _attribute_value(attr: AttributeProto) -> Any:
    if attr.type in _SUBGRAPH_TYPES:
        return None
    if attr.type == AttributeProto.TENSOR and attr.t.data_location == _EXTERNAL:
        return None
    return onnx.helper.get_attribute_value(attr)


def _attribute_arg(attr: AttributeProto, source: str) -> Arg:
    # A function body's attribute can name the caller's attribute instead of holding a value.
    if attr.ref_attr_name:
        return Arg.dynamic(f"{source} {attr.name!r} set by the caller ({attr.ref_attr_name!r})")
    if attr.type not in AttributeProto.AttributeType.values():
        return Arg.dynamic(f"{source} {attr.name!r} of unknown type {attr.type}")
    return Arg.const(_attribute_value(attr), source=source)


def _tensor_arg(tensor: TensorProto, source: str) -> Arg:
    try:
        return Arg.const(numpy_helper.to_array(tensor), source=source)
    except Exception as exc:  # a damaged tensor fails in onnx or numpy in many ways
        cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Arg.dynamic(f"{source}, an unreadable tensor ({cause})")


def _constant_node_value(node: NodeProto) -> Arg:
    source = f"Constant {node.name!r}"
    for attr in node.attribute:
        name = _text(attr.name)
        if name == "value" and attr.type == AttributeProto.TENSOR and not attr.ref_attr_name:
            if attr.t.data_location == _EXTERNAL:
                return Arg.dynamic("Constant with external data")
            return _tensor_arg(attr.t, source)
        if name == "value" or name.startswith("value_"):
            return _attribute_arg(attr, source)
    return Arg.dynamic(f"Constant {node.name!r} without a value")


def resolve_value(name: str, scope: _Scope) -> Arg:
    """Resolves a value name to a constant through the scope chain, or says where it comes from."""
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
            where = "graph input" if current.parent is None else f"input of scope {current.name}"
            return Arg.dynamic(f"{where} {name!r}")
        if name in current.computed:
            break
        current = current.parent
    return Arg.dynamic(f"computed value {name!r}")


def module_path_of(node: NodeProto) -> str | None:
    """The PyTorch module a node came from, as the dynamo or the legacy exporter recorded it."""
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            try:
                scopes = ast.literal_eval(_text(prop.value))
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                break
            # Metadata is free text: anything but a list of names is ignored, not trusted.
            if not isinstance(scopes, (list, tuple)) or not all(isinstance(s, str) for s in scopes):
                break
            modules = [s for s in scopes[:-1] if s]
            return modules[-1] if modules else None
    for prop in node.metadata_props:
        if prop.key == "namespace":
            names = [part.split(":", 1)[0].strip() for part in _text(prop.value).split("/")]
            modules = [n for n in names[1:-1] if n]
            return modules[-1] if modules else None
    node_name = _text(node.name)
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


def _node_view(node: NodeProto, scope: _Scope, index: GraphIndex) -> NodeView:
    op_type, domain = _text(node.op_type), _text(node.domain)
    domain = domain if domain not in _DEFAULT_DOMAINS else ""
    op = op_type if not domain else f"{domain}::{op_type}"
    names = _input_names(op_type, domain, scope.opsets.get(domain, 1))
    inputs, outputs = tuple(map(_text, node.input)), tuple(map(_text, node.output))
    args: dict[str, Arg] = {}
    for position, value in enumerate(inputs):
        if not value:
            continue
        key = names[position] if position < len(names) else f"input{position}"
        args[key] = resolve_value(value, scope)
    for attr in node.attribute:
        if attr.type not in _SUBGRAPH_TYPES:
            args.setdefault(_text(attr.name), _attribute_arg(attr, "attribute"))
    return NodeView(
        kind=ArtifactKind.ONNX,
        scope=scope.name,
        name=_text(node.name) or f"{op_type}({', '.join(outputs)})",
        op=op,
        inputs=inputs,
        outputs=outputs,
        args=args,
        module=module_path_of(node),
        graph=index,
    )


def _scope_index(scope: _Scope) -> GraphIndex:
    def build() -> list[NodeView]:
        return [_node_view(node, scope, index) for node in scope.nodes]

    index = GraphIndex(scope.name, build)
    return index


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

    def check_initializers(graph: GraphProto, scope_name: str) -> None:
        for tensor in graph.initializer:
            if tensor.data_location != _EXTERNAL:
                continue
            location = external_data_location(tensor) or ""
            resolved = check_external_location(path, location, tensor.name)
            if location not in missing and not os.path.exists(resolved):
                missing[location] = scope_name

    roots: list[tuple[GraphProto, _Scope]] = [
        (
            model.graph,
            _Scope("main", None, inputs={i.name for i in model.graph.input}, opsets=opsets),
        )
    ]
    for function in model.functions:
        fname = (
            f"function {function.domain}::{function.name}"
            if function.domain
            else (f"function {function.name}")
        )
        fopsets = dict(opsets)
        fopsets.update({o.domain: o.version for o in function.opset_import})
        roots.append((function, _Scope(fname, None, inputs=set(function.input), opsets=fopsets)))  # type: ignore[arg-type]

    stack: list[tuple[Any, _Scope]] = list(reversed(roots))
    while stack:
        graph, scope = stack.pop()
        scope_count += 1
        is_function = isinstance(graph, onnx.FunctionProto)
        if not is_function:
            check_initializers(graph, scope.name)
            scope.initializers = {tensor.name: tensor for tensor in graph.initializer}
        scope.nodes = graph.node
        index = _scope_index(scope)
        hits: list[NodeProto] = []
        constants = scope.constants
        computed = scope.computed
        for node in graph.node:
            node_count += 1
            op_type = node.op_type
            if op_type in wanted_types:
                hits.append(node)
            if op_type == "Constant" and len(node.output) == 1:
                constants[node.output[0]] = node
            else:
                computed.update(node.output)
            for attr in node.attribute:
                if attr.type == AttributeProto.GRAPH:
                    sub = attr.g
                    label = f"{scope.name}/{node.name or op_type}.{attr.name}"
                    stack.append(
                        (
                            sub,
                            _Scope(
                                label,
                                scope,
                                inputs={i.name for i in sub.input},
                                opsets=scope.opsets,
                            ),
                        )
                    )
                elif attr.type == AttributeProto.GRAPHS:
                    for i, sub in enumerate(attr.graphs):
                        label = f"{scope.name}/{node.name or op_type}.{attr.name}[{i}]"
                        stack.append(
                            (
                                sub,
                                _Scope(
                                    label,
                                    scope,
                                    inputs={x.name for x in sub.input},
                                    opsets=scope.opsets,
                                ),
                            )
                        )
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

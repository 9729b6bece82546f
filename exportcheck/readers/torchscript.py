"""Reads a TorchScript archive: every method's inlined graph, arguments by schema name, module flags."""

from __future__ import annotations

import re
import zipfile
from functools import lru_cache
from typing import Any

from exportcheck.errors import UnreadableArtifactError, first_line
from exportcheck.readers.view import (
    Arg,
    ArtifactKind,
    ArtifactView,
    GraphIndex,
    ModuleFlag,
    NodeView,
)

_HIERARCHY_PART = re.compile(r"([^.()]+(?:\.[0-9]+)*)\(([^()]*)\)")
_MAX_RESOLVE_DEPTH = 32


def load_archive(path: str) -> Any:
    """torch.jit.load on the CPU, turning every failure into a one-line input error."""
    import torch

    if not zipfile.is_zipfile(path):
        raise UnreadableArtifactError(
            "not a TorchScript archive (not a zip file; a pickled checkpoint or state dict "
            "is not a deployable model)",
            subject=path,
        )
    try:
        return torch.jit.load(path, map_location="cpu")
    except Exception as exc:
        cause = first_line(exc, with_type=False)
        hint = ""
        if "constants.pkl" in cause or "data.pkl" in cause or "archive" in cause.lower():
            hint = " (is it a torch.save checkpoint rather than a TorchScript archive?)"
        raise UnreadableArtifactError(
            f"cannot load as TorchScript: {cause}{hint}", subject=path
        ) from None


@lru_cache(maxsize=1024)
def _argument_names(schema: str) -> tuple[str, ...]:
    import torch

    if not schema or schema == "(no schema)":
        return ()
    try:
        return tuple(a.name for a in torch._C.parse_schema(schema).arguments)
    except RuntimeError:
        return ()


def module_path_from_hierarchy(hierarchy: str, known: frozenset[str] = frozenset()) -> str | None:
    """`encoder(TransformerEncoder).0(Layer).dropout(Dropout)` to `encoder.layers.0.dropout`.

    Inlining a loop over a ModuleList drops the list's own name from the hierarchy, so each
    step is matched against the archive's real module paths, looking one container deeper.
    """
    names = [
        name
        for name, _ in _HIERARCHY_PART.findall(hierarchy)
        if name not in ("UNKNOWN_INSTANCE", "SELF")
    ]
    if not known:
        return ".".join(names) or None
    path = ""
    for name in names:
        direct = f"{path}.{name}" if path else name
        if direct in known:
            path = direct
            continue
        prefix = f"{path}." if path else ""
        nested = sorted(
            p
            for p in known
            if p.startswith(prefix)
            and p.endswith(f".{name}")
            and p.count(".") == direct.count(".") + 1
        )
        path = nested[0] if nested else direct
    return path or None


class _Resolver:
    """Folds constants, module `training` flags and `prim::If` on them into argument values."""

    def __init__(self, flags: dict[str, bool]) -> None:
        self.flags = flags
        self.known = frozenset(flags)

    def module_path(self, value: Any) -> str | None:
        names: list[str] = []
        node = value.node()
        while node.kind() == "prim::GetAttr":
            names.append(node.s("name"))
            value = node.input()
            node = value.node()
        if node.kind() != "prim::Param":
            return None
        return ".".join(reversed(names))

    def resolve(self, value: Any, depth: int = 0) -> Arg:
        node = value.node()
        kind = node.kind()
        if depth > _MAX_RESOLVE_DEPTH:
            return Arg.dynamic("expression too deep to fold")
        if kind == "prim::Constant":
            try:
                return Arg.const(value.toIValue(), source="constant")
            except RuntimeError:
                return Arg.dynamic("constant of an unreadable type")
        if kind == "prim::GetAttr" and node.s("name") == "training":
            owner = self.module_path(node.input())
            if owner is not None and owner in self.flags:
                label = f"{owner}.training" if owner else "training"
                return Arg.const(self.flags[owner], source=f"module flag {label}")
            return Arg.dynamic("training flag of an unknown module")
        if kind == "aten::__not__":
            inner = self.resolve(node.input(), depth + 1)
            if inner.constant:
                return Arg.const(not inner.value, source=inner.source)
            return inner
        if kind == "prim::If":
            condition = self.resolve(node.input(), depth + 1)
            if not condition.constant:
                return Arg.dynamic(f"branch on {condition.source}")
            blocks = list(node.blocks())
            block = blocks[0] if condition.value else blocks[1]
            position = list(node.outputs()).index(value)
            returned = list(block.returnNode().inputs())[position]
            return self.resolve(returned, depth + 1)
        if kind == "prim::Param":
            return Arg.dynamic(f"method input %{value.debugName()}")
        return Arg.dynamic(f"{kind} output %{value.debugName()}")


def _walk_blocks(graph: Any, scope: str) -> list[tuple[Any, str]]:
    """Every node of a graph with the scope it sits in (blocks of prim::If and prim::Loop)."""
    found: list[tuple[Any, str]] = []
    stack = [(graph.nodes(), scope)]
    while stack:
        nodes, scope_name = stack.pop()
        for node in nodes:
            found.append((node, scope_name))
            for i, block in enumerate(node.blocks()):
                stack.append((block.nodes(), f"{scope_name}/{node.kind()}.block{i}"))
    return found


def _node_name(node: Any, position: int) -> str:
    outputs = [o.debugName() for o in node.outputs()]
    return f"%{outputs[0]}" if outputs else f"{node.kind()}#{position}"


def read_torchscript(path: str, wanted: frozenset[str], module: Any = None) -> ArtifactView:
    module = module if module is not None else load_archive(path)
    modules = tuple(
        ModuleFlag(
            path=name,
            type_name=getattr(sub, "original_name", type(sub).__name__),
            training=bool(sub.training),
        )
        for name, sub in module.named_modules()
    )
    resolver = _Resolver({flag.path: flag.training for flag in modules})
    views: list[NodeView] = []
    node_count = 0
    scope_count = 0
    for method_name in module._c._method_names():
        try:
            graph = getattr(module, method_name).inlined_graph
        except (AttributeError, RuntimeError):
            continue
        scope_count += 1
        entries = _walk_blocks(graph, method_name)
        node_count += len(entries)

        def build(entries: list[tuple[Any, str]] = entries) -> list[NodeView]:
            return [
                _view(node, scope, i, resolver, None) for i, (node, scope) in enumerate(entries)
            ]

        index = GraphIndex(method_name, build)
        for position, (node, scope) in enumerate(entries):
            if node.kind() in wanted:
                views.append(_view(node, scope, position, resolver, index))
    return ArtifactView(
        path=path,
        kind=ArtifactKind.TORCHSCRIPT,
        nodes=tuple(views),
        modules=modules,
        node_count=node_count,
        scope_count=scope_count,
    )


def _view(
    node: Any, scope: str, position: int, resolver: _Resolver, index: GraphIndex | None
) -> NodeView:
    inputs = list(node.inputs())
    names = _argument_names(node.schema()) if node.kind().startswith("aten::") else ()
    args: dict[str, Arg] = {}
    if names:
        for name, value in zip(names, inputs):
            args[name] = resolver.resolve(value)
    module = module_path_from_hierarchy(node.getModuleHierarchy(), resolver.known)
    if module is None:
        for value in inputs:
            producer = value.node()
            if producer.kind() == "prim::GetAttr":
                module = resolver.module_path(producer.input()) or None
                if module:
                    break
    return NodeView(
        kind=ArtifactKind.TORCHSCRIPT,
        scope=scope,
        name=_node_name(node, position),
        op=node.kind(),
        inputs=tuple(v.debugName() for v in inputs),
        outputs=tuple(v.debugName() for v in node.outputs()),
        args=args,
        module=module,
        graph=index,
    )

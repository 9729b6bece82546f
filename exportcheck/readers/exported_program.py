"""Reads a torch.export archive (.pt2): every graph module's nodes and the graph signature."""

from __future__ import annotations

import logging
import zipfile
from typing import Any

from exportcheck.errors import UnreadableArtifactError, first_line
from exportcheck.readers.view import Arg, ArtifactKind, ArtifactView, GraphIndex, NodeView


class _Held(logging.Filter):
    """Keeps torch.export's log records instead of letting them reach stderr."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.records.append(record)
        return False


def load_program(path: str) -> Any:
    import torch

    if not zipfile.is_zipfile(path):
        raise UnreadableArtifactError(
            "not a torch.export archive (.pt2 files are zip archives)", subject=path
        )
    # torch.export.load logs a damaged archive's traceback as a warning, then raises an error
    # that only says "check the warnings above": hold the log, report its cause in one line.
    logger, held = logging.getLogger("torch.export"), _Held()
    logger.addFilter(held)
    try:
        return torch.export.load(path)
    except Exception as exc:
        logged = [r.exc_info[1] for r in held.records if r.exc_info and r.exc_info[1]]
        cause = first_line(logged[-1] if logged else exc, with_type=False)
        raise UnreadableArtifactError(
            f"cannot load as a torch.export program: {cause} (saved by another torch "
            "version, or not an ExportedProgram?)",
            subject=path,
        ) from None
    finally:
        logger.removeFilter(held)


def op_key(target: Any) -> str | None:
    """`aten::dropout` for torch.ops.aten.dropout.default, the TorchScript spelling."""
    schema = getattr(target, "_schema", None)
    return schema.name if schema is not None else None


def _module_path(node: Any) -> str | None:
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return None
    path = list(stack.values())[-1][0]
    return path or None


def _arg(value: Any) -> Arg:
    import torch

    if isinstance(value, torch.fx.Node):
        return Arg.dynamic(f"node {value.name}")
    return Arg.const(value, source="constant")


def _view(node: Any, scope: str, index: GraphIndex | None) -> NodeView:
    import torch

    key = op_key(node.target) if node.op == "call_function" else None
    args: dict[str, Arg] = {}
    if key is not None:
        formals = node.target._schema.arguments
        for formal, value in zip(formals, node.args):
            args[formal.name] = _arg(value)
        for name, value in node.kwargs.items():
            args[name] = _arg(value)
    inputs = tuple(a.name for a in node.all_input_nodes if isinstance(a, torch.fx.Node))
    return NodeView(
        kind=ArtifactKind.EXPORTED_PROGRAM,
        scope=scope,
        name=node.name,
        op=key or f"{node.op}:{getattr(node.target, '__name__', node.target)}",
        inputs=inputs,
        outputs=(node.name,),
        args=args,
        module=_module_path(node),
        graph=index,
    )


def read_exported_program(path: str, wanted: frozenset[str], program: Any = None) -> ArtifactView:
    import torch

    program = program if program is not None else load_program(path)
    views: list[NodeView] = []
    node_count = 0
    scope_count = 0
    for name, graph_module in program.graph_module.named_modules():
        if not isinstance(graph_module, torch.fx.GraphModule):
            continue
        scope = name or "main"
        scope_count += 1
        nodes = list(graph_module.graph.nodes)
        node_count += len(nodes)

        def build(nodes: list[Any] = nodes, scope: str = scope) -> list[NodeView]:
            return [_view(n, scope, None) for n in nodes]

        index = GraphIndex(scope, build)
        for node in nodes:
            if node.op == "call_function" and op_key(node.target) in wanted:
                views.append(_view(node, scope, index))
    signature = program.graph_signature
    return ArtifactView(
        path=path,
        kind=ArtifactKind.EXPORTED_PROGRAM,
        nodes=tuple(views),
        mutated_buffers=tuple(signature.buffers_to_mutate.values()),
        node_count=node_count,
        scope_count=scope_count,
    )

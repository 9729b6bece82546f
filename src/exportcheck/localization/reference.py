"""The eval-mode model's intermediate values: its torch.export program run node by node (names
and metadata the exporters record), and its modules' outputs by forward hooks."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator, Sequence
from typing import Any


class ReferenceUnavailable(Exception):
    """The model's intermediate values cannot be had this way (it does not export, say)."""


@contextlib.contextmanager
def quiet_torch() -> Iterator[None]:
    """torch.export and the ONNX registry log and warn about their own steps; a library stays
    silent."""
    names = ["torch"] + [
        name for name in list(logging.root.manager.loggerDict) if name.startswith("torch.")
    ]
    loggers = [logging.getLogger(name) for name in names]
    previous = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, previous):
            logger.setLevel(level)


def model_program(model: Any, inputs: Sequence[Any], *, for_onnx: bool) -> Any:
    """The eval-mode model as torch.export captures it; for ONNX, decomposed as the dynamo
    exporter decomposes it, so its node names are the ONNX value names."""
    import torch

    try:
        with quiet_torch():
            program = torch.export.export(model, tuple(inputs), strict=False)
    except Exception as error:
        raise ReferenceUnavailable(f"torch.export fails on the model: {error}") from None
    if not for_onnx:
        return program
    try:
        from torch.onnx._internal.exporter import _core, _registration
    except ImportError:
        return program
    try:
        with quiet_torch():
            registry = _registration.ONNXRegistry.from_torchlib()
            return _core._prepare_exported_program_for_export(program, registry=registry)
    except Exception:
        # A private step of torch's exporter: without it the undecomposed names still match
        # every operator the exporter kept whole.
        return program


def program_values(program: Any, inputs: Sequence[Any]) -> Iterator[tuple[Any, Any]]:
    """(FX node, value) for every node of an ExportedProgram's module, in execution order;
    a value is released once its last user ran, so only live values are held."""
    import torch
    import torch.utils._pytree as pytree

    module = program.module() if hasattr(program, "module") else program
    yield from module_values(module, pytree.tree_leaves(tuple(inputs)), torch)


def module_values(module: Any, flat_inputs: list[Any], torch: Any) -> Iterator[tuple[Any, Any]]:
    interpreter = torch.fx.Interpreter(module, garbage_collect_values=False)
    interpreter.args_iter = iter(flat_inputs)
    nodes = list(module.graph.nodes)
    last_use: dict[Any, Any] = {}
    for node in nodes:
        for used in node.all_input_nodes:
            last_use[used] = node
    env = interpreter.env
    with torch.no_grad():
        for node in nodes:
            if node.op == "output":
                break
            env[node] = interpreter.run_node(node)
            yield node, env[node]
            for used in node.all_input_nodes:
                if last_use.get(used) is node:
                    env.pop(used, None)


def placeholder_names(program: Any) -> list[str]:
    """The user-input placeholders of an ExportedProgram, in order."""
    signature = program.graph_signature
    return [spec.arg.name for spec in signature.input_specs if spec.kind.name == "USER_INPUT"]

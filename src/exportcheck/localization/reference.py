"""The eval-mode model's intermediate values: its torch.export program run node by node (names
and metadata the exporters record), and its modules' outputs by forward hooks."""

from __future__ import annotations

import contextlib
import io
import logging
import re
import warnings
from collections.abc import Collection, Iterator, Sequence
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


def model_program(model: Any, inputs: Sequence[Any], *, kept: Collection[str] | None = None) -> Any:
    """The eval-mode model as torch.export captures it. With `kept` (the operators an ONNX
    export kept whole, `aten.conv2d.default`), decomposed the way the dynamo exporter
    decomposes it, everything else down to core ATen, so its node names are the ONNX value
    names; undecomposed when every name already matches."""
    import torch

    try:
        with quiet_torch():
            program = torch.export.export(model, tuple(inputs), strict=False)
    except Exception as error:
        raise ReferenceUnavailable(f"torch.export fails on the model: {error}") from None
    if kept is None:
        return program
    # torch.onnx decomposes to core ATen every operator it has no translation for; the
    # artifact's `fx_node` metadata names those it translated whole (`kept`).
    table = torch.export.default_decompositions()
    for name in kept:
        operator: Any = torch.ops
        try:
            for part in name.split("."):
                operator = getattr(operator, part)
            table.pop(operator, None)
        except (AttributeError, RuntimeError, KeyError):
            continue
    try:
        with quiet_torch():
            return program.run_decompositions(table)
    except Exception:
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


NODE_NAME = re.compile(r"%\w+")
_SCALAR = re.compile(r"-?(?:\d+\.?\d*(?:e[-+]?\d+)?|inf|nan)")
Call = tuple[str, tuple[str, ...]]


def printed_call(text: str) -> Call:
    """An FX node's operator and its arguments as text, from its printed form
    (`node.format_node()`, or the `fx_node` the dynamo exporter records)."""
    text = text.strip()
    body = text[text.find("call_function[") :]
    head, _, rest = body.partition("(args = (")
    arguments, depth, current = [], 0, ""
    for char in rest.split("), kwargs", 1)[0]:
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        if char == "," and depth == 0:
            arguments.append(current.strip())
            current = ""
        else:
            current += char
    arguments.append(current.strip())
    return head, tuple(a for a in arguments if a)


def same_call(recorded: Call, reference: Call, renamed: dict[str, str] | None = None) -> bool:
    """Whether two FX nodes compute the same thing: the same operator and literal arguments,
    reading nodes of the same names (`renamed` maps a recorded name to the model program's).
    A scalar stands for any input: the exporter turns scalars into tensors to promote their
    type. Programs numbered differently from some point on pair a name with another value
    (`view_10` of the keys with `view_10` of the values): the nodes read tell them apart."""
    (head, arguments), (reference_head, reference_arguments) = recorded, reference
    names = renamed or {}
    return (
        head == reference_head
        and len(arguments) == len(reference_arguments)
        and all(
            _SCALAR.fullmatch(a)
            or _SCALAR.fullmatch(b)
            or NODE_NAME.sub(lambda m: "%" + names.get(m[0][1:], m[0][1:]), a) == b
            for a, b in zip(arguments, reference_arguments)
        )
    )

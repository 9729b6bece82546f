"""TorchScript archives and torch.export programs, run with their intermediate values recorded:
a program node by node beside the model's own program, a TorchScript archive module by module
on the inputs each module received in the eval-mode model."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from exportcheck.localization.places import forward_line, module_from_stack, user_frame
from exportcheck.localization.reference import (
    model_program,
    printed_call,
    program_values,
    same_call,
)
from exportcheck.localization.trace import Localization, Place, Walk
from exportcheck.numerics.metrics import flatten, to_numpy

LABEL = "torch/cpu"
OTHER_COMPUTATION = "the node of that name in the model's program computes something else"
NESTED = "a nested tensor (a fast path between layers): no dense value to compare"


def _fx_place(node: Any) -> Place:
    module, module_type = module_from_stack(node.meta.get("nn_module_stack"))
    path, line = user_frame(node.meta.get("stack_trace"))
    return Place(
        (node.name,), (str(node.target),), module or "", module_type, str(node.target), path, line
    )


def trace_exported_program(
    model: Any, loaded: Any, inputs: Sequence[Any], fmt: str
) -> Localization:
    """Every node of the archived program against the node of the same name in the program
    torch.export makes of the eval-mode model."""
    import torch

    reference = program_values(model_program(model, inputs), inputs)
    held: dict[str, tuple[str, Any]] = {}
    walk = Walk()
    candidates = 0
    for node, value in program_values(loaded, inputs):
        inputs_of = [n.name for n in node.all_input_nodes]
        if node.op != "call_function":
            continue
        if not isinstance(value, torch.Tensor):
            walk.pass_through(node.name, inputs_of)
            continue
        candidates += 1
        found = _step_to(reference, node.name, held)
        if found is None:
            walk.skip(node.name, inputs_of, "no node of that name in the model's program")
            continue
        counterpart, expected = found
        if not same_call(printed_call(node.format_node()), printed_call(counterpart)):
            walk.skip(node.name, inputs_of, OTHER_COMPUTATION)
            continue
        walk.add(node.name, inputs_of, to_numpy(value), to_numpy(expected), _fx_place(node))
    return walk.result(fmt, LABEL, "FX node names (torch.export)", candidates)


def _step_to(
    reference: Iterator[tuple[Any, Any]], name: str, held: dict[str, tuple[str, Any]]
) -> tuple[str, Any] | None:
    """The model program's node `name`, printed, and its value; nodes passed on the way are
    held only while the archive may still ask for them (programs of the same model run in the
    same order)."""
    import torch

    if name in held:
        return held.pop(name)
    for node, value in reference:
        if node.name == name:
            return (node.format_node(), value) if isinstance(value, torch.Tensor) else None
        if isinstance(value, torch.Tensor) and node.op == "call_function":
            held[node.name] = (node.format_node(), value)
            if len(held) > 64:
                held.pop(next(iter(held)))
    return None


def _submodule(root: Any, path: str) -> Any:
    module = root
    for part in path.split(".") if path else ():
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


def _ops(script_module: Any) -> tuple[str, ...]:
    try:
        graph = script_module.inlined_graph
    except Exception:
        return ()
    kinds = [n.kind() for n in graph.nodes() if n.kind().startswith("aten::")]
    return tuple(dict.fromkeys(kinds))[:8]


def _run_alone(
    counterpart: Any, args: Any, kwargs: Any, expected: list[Any]
) -> tuple[list[Any], str | None]:
    """The archive's submodule's output tensors on the model's module's arguments, or why
    they cannot be compared with `expected`."""
    if counterpart is None:
        return [], "no submodule of that name in the archive"
    try:
        # Keyword arguments too: a layer called with `src_key_padding_mask=` computes
        # something else without it.
        actual = flatten(counterpart(*args, **kwargs))
    except Exception:
        return [], "the archive's submodule does not run alone"
    if len(actual) != len(expected) or not expected:
        return actual, "another number of outputs"
    if any(t.is_nested for t in (*actual, *expected)):
        return actual, NESTED
    return actual, None


def trace_torchscript(model: Any, loaded: Any, inputs: Sequence[Any], fmt: str) -> Localization:
    """Each submodule of the archive run on the inputs its counterpart received in the
    eval-mode model, against that counterpart's output: a module that diverges on inputs
    that agree by construction is a root cause; its parents only carry it."""
    import torch

    walk = Walk()
    children: dict[str, list[str]] = {}
    counts = {"candidates": 0}
    seen: set[str] = set()

    def hook(name: str, module: Any) -> Any:
        def compare(_module: Any, args: Any, kwargs: Any, output: Any) -> None:
            if name in seen:
                return
            seen.add(name)
            parent = name.rsplit(".", 1)[0] if "." in name else ""
            if name:
                children.setdefault(parent, []).append(name)
            counts["candidates"] += 1
            inner = children.get(name, [])
            counterpart = _submodule(loaded, name)
            expected = flatten(output)
            actual, why = _run_alone(counterpart, args, kwargs, expected)
            if why is not None:
                walk.skip(name, inner, why)
                return
            path, line = forward_line(module)
            place = Place(
                (name or "<root>",),
                _ops(counterpart),
                name,
                type(module).__name__,
                None,
                path,
                line,
            )
            for index, (a, e) in enumerate(zip(actual, expected)):
                value = name if index == 0 else f"{name}[{index}]"
                walk.add(value, inner, to_numpy(a), to_numpy(e), place)

        return compare

    handles = [
        m.register_forward_hook(hook(n, m), with_kwargs=True) for n, m in model.named_modules()
    ]
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return walk.result(fmt, LABEL, "submodules run on the model's own inputs", counts["candidates"])

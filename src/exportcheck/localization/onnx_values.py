"""An ONNX model's intermediate values: one ONNX Runtime session, at ORT_DISABLE_ALL so nothing
is fused away, over a copy of the graph that lists the wanted values as outputs; run once per
share of those values that fits the memory budget, each share compared and dropped."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from exportcheck.localization.places import forward_line, module_from_stack, user_frame
from exportcheck.localization.reference import (
    NODE_NAME,
    ReferenceUnavailable,
    model_program,
    printed_call,
    program_values,
    same_call,
)
from exportcheck.localization.trace import Localization, Place, Walk
from exportcheck.numerics.metrics import to_numpy
from exportcheck.numerics.runtime_imports import onnxruntime
from exportcheck.readers.onnx.module_paths import scoped_module

LABEL = "onnxruntime/CPU/cpu/disable_all"
MEMORY_BUDGET = 256 * 2**20
"""Bytes of intermediate values fetched from one run; more are fetched by running again."""
_SCOPES = "pkg.torch.onnx.name_scopes"
_CLASSES = "pkg.torch.onnx.class_hierarchy"
_STACK = "pkg.torch.onnx.stack_trace"
_FX_NODE = "pkg.torch.onnx.fx_node"
_NOT_VALUES = frozenset({"Constant", "ConstantOfShape", "Shape", "Size"})


@dataclass(frozen=True)
class Step:
    """One value an ONNX node produces, with the node's inputs and where it comes from."""

    value: str
    inputs: tuple[str, ...]
    node: Any


class Fetcher:
    """Fetches wanted values in execution order from one session, a share at a time."""

    def __init__(self, model: Any, wanted: Sequence[str], sizes: dict[str, int], feed: dict):
        ort = onnxruntime()
        copy = type(model)()
        copy.CopyFrom(model)
        present = {o.name for o in copy.graph.output}
        # Every node output is listed, so a second look inside one module needs no new session.
        for node in copy.graph.node:
            for name in node.output:
                if name and name not in present and node.op_type not in _NOT_VALUES:
                    copy.graph.output.add().name = name
                    present.add(name)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.log_severity_level = 4
        self.session = ort.InferenceSession(
            copy.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.feed = feed
        self.shares = _shares(wanted, sizes)
        self.held: dict[str, np.ndarray] = {}
        self.runs = 0

    def get(self, name: str) -> np.ndarray:
        while name not in self.held and self.shares:
            share = self.shares.pop(0)
            self.held.update(zip(share, self.session.run(share, self.feed)))
            self.runs += 1
        return self.held.pop(name)

    def fetch(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        """Values outside the plan, in one more run of the same session."""
        self.runs += 1
        return dict(zip(names, self.session.run(list(names), self.feed)))


def _shares(wanted: Sequence[str], sizes: dict[str, int]) -> list[list[str]]:
    shares: list[list[str]] = [[]]
    used = 0
    for name in wanted:
        size = sizes.get(name, 0)
        if shares[-1] and used + size > MEMORY_BUDGET:
            shares.append([])
            used = 0
        shares[-1].append(name)
        used += size
    return [s for s in shares if s]


def _metadata(node: Any) -> dict[str, str]:
    return {p.key: p.value for p in node.metadata_props}


def _steps(graph: Any) -> Iterator[Step]:
    for node in graph.node:
        for value in node.output:
            if value:
                yield Step(value, tuple(i for i in node.input if i), node)


def _feed(session_inputs: Sequence[Any], inputs: Sequence[Any]) -> dict[str, np.ndarray]:
    return {i.name: to_numpy(x) for i, x in zip(session_inputs, inputs)}


def _list(text: str | None) -> list[str]:
    try:
        value = ast.literal_eval(text) if text else []
    except (ValueError, SyntaxError):
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def _lowerings(graph: Any) -> dict[str, list[Any]]:
    """FX node name -> the ONNX nodes the exporter made of it (metadata `fx_node`)."""
    made: dict[str, list[Any]] = {}
    for node in graph.node:
        text = _metadata(node).get(_FX_NODE, "")
        if text.startswith("%"):
            made.setdefault(text[1:].split(" ", 1)[0], []).append(node)
    return made


_TARGET = re.compile(r"target=torch\.ops\.([\w.]+)\]")


# torch.export names a lifted parameter, buffer or constant `p_`, `b_` or `c_` and the
# attribute path; the model program's module reads the same tensor by get_attr without prefix.
_LIFTED = ("p_", "b_", "c_")


def aligned_nodes(module: Any, graph: Any) -> dict[str, Any]:
    """FX nodes of the model's program that are the node the exporter recorded under the same
    name (`fx_node`): same operator, same literal arguments, reading nodes of the same names.
    A program decomposed a little differently numbers its nodes differently from some point
    on: there a name with its operator alone pairs values that have nothing to do with each
    other (`view_10` of the keys with `view_10` of the values).

    An output of a multi-output operator (`getitem`, BatchNorm's result) is paired where the
    ONNX node making the value of that name records the operator it reads, paired, and makes
    the value at the same position: the exporter's optimizer folds BatchNorm into the Conv
    before it and the Conv's output keeps BatchNorm's record and the getitem's name."""
    import operator

    recorded = {}
    made_by: dict[str, tuple[str, int]] = {}
    for node in graph.node:
        text = _metadata(node).get(_FX_NODE, "")
        if text.startswith("%"):
            name = text[1:].split(" ", 1)[0]
            recorded[name] = printed_call(text)
            made_by.update((value, (name, position)) for position, value in enumerate(node.output))
    lifted = {
        prefix + node.name: node.name
        for node in module.graph.nodes
        if node.op == "get_attr"
        for prefix in _LIFTED
    }
    aligned: dict[str, Any] = {}
    for node in module.graph.nodes:
        if node.op != "call_function":
            continue
        if node.name in recorded:
            if same_call(recorded[node.name], printed_call(node.format_node()), lifted):
                aligned[node.name] = node
        elif node.target is operator.getitem and node.name in made_by:
            source, position = node.args
            if getattr(source, "name", None) in aligned and made_by[node.name] == (
                source.name,
                position,
            ):
                aligned[node.name] = node
    return aligned


def _kept_operators(graph: Any) -> set[str]:
    """The operators the exporter translated whole (`aten.conv2d.default`), from `fx_node`;
    and those of nodes the recorded ones read but that left no record of their own (a Conv
    the optimizer folded BatchNorm into), by FX's naming a node after its operator. A wrong
    guess only decomposes the model's program differently: pairing still needs same_call."""
    import torch

    kept, recorded, read = set(), set(), set()
    for node in graph.node:
        text = _metadata(node).get(_FX_NODE, "")
        match = _TARGET.search(text)
        if match:
            kept.add(match[1])
        if text.startswith("%"):
            _, arguments = printed_call(text)
            recorded.add(text[1:].split(" ", 1)[0])
            read.update(name[1:] for a in arguments for name in NODE_NAME.findall(a))
    for name in read - recorded:
        op_name = re.sub(r"_\d+$", "", name)
        if hasattr(getattr(torch.ops.aten, op_name, None), "default"):
            kept.add(f"aten.{op_name}.default")
    return kept


def dynamo_place(node: Any, fx_node: Any, lowering: Sequence[Any] = ()) -> Place:
    """Module, class, operator and line as the dynamo exporter recorded them on the node;
    the nodes are all those the exporter made of the same FX node."""
    meta = _metadata(node)
    made = [n for n in lowering if n.op_type not in _NOT_VALUES] or [node]
    scopes, classes = _list(meta.get(_SCOPES)), _list(meta.get(_CLASSES))
    module = scopes[-2] if len(scopes) >= 2 else None
    module_type = classes[-2].rsplit(".", 1)[-1] if len(classes) >= 2 else None
    if module is None and fx_node is not None:
        module, module_type = module_from_stack(fx_node.meta.get("nn_module_stack"))
    stack = meta.get(_STACK) or (fx_node.meta.get("stack_trace") if fx_node is not None else None)
    path, line = user_frame(stack)
    operation = classes[-1] if classes else (str(fx_node.target) if fx_node is not None else None)
    return Place(
        tuple(n.name for n in made),
        tuple(dict.fromkeys(n.op_type for n in made)),
        module or "",
        module_type,
        operation,
        path,
        line,
    )


def is_dynamo_export(model: Any) -> bool:
    return any(p.key == _SCOPES for n in model.graph.node for p in n.metadata_props)


def _nbytes(fx_node: Any) -> int:
    value = fx_node.meta.get("val")
    try:
        return int(value.numel()) * int(value.element_size())
    except Exception:
        return 0


def trace_dynamo_onnx(model: Any, onnx_model: Any, inputs: Sequence[Any], fmt: str) -> Localization:
    """Every ONNX value named after an FX node of the model's program, against that node's
    value in the eval-mode model."""
    program = model_program(model, inputs, kept=_kept_operators(onnx_model.graph))
    module = program.module()
    named = {n.name for n in module.graph.nodes if n.op == "call_function"}
    fx_nodes = aligned_nodes(module, onnx_model.graph)
    lowerings = _lowerings(onnx_model.graph)
    steps = [s for s in _steps(onnx_model.graph)]
    wanted = [s.value for s in steps if s.value in fx_nodes]
    fetcher = _fetcher(onnx_model, wanted, {n: _nbytes(fx_nodes[n]) for n in wanted}, inputs)
    reference = program_values(program, inputs)
    needed = set(wanted)
    held: dict[str, Any] = {}
    walk = Walk()
    candidates = 0
    for step in steps:
        if step.node.op_type in _NOT_VALUES:
            walk.pass_through(step.value, step.inputs)
            continue
        candidates += 1
        if step.value not in fx_nodes:
            reason = (
                "an FX node of that name computes something else (decomposed differently)"
                if step.value in named
                else "an exporter-made value with no FX node"
            )
            # An operator of the model that could not be compared may be where a divergence
            # starts; a helper value inside one operator's lowering is that operator's own.
            origin = (
                dynamo_place(step.node, None, lowerings.get(step.value, ()))
                if step.value in named
                else None
            )
            walk.skip(step.value, step.inputs, reason, origin)
            continue
        expected = _advance(reference, step.value, needed, held)
        if expected is None:
            walk.skip(step.value, step.inputs, "the FX node gave no single tensor")
            fetcher.get(step.value)
            continue
        fx_node = fx_nodes[step.value]
        walk.add(
            step.value,
            (*step.inputs, *(n.name for n in fx_node.all_input_nodes)),
            fetcher.get(step.value),
            expected,
            dynamo_place(step.node, fx_node, lowerings.get(step.value, ())),
        )
        needed.discard(step.value)
    return walk.result(fmt, LABEL, "FX node names (dynamo exporter metadata)", candidates)


def _advance(reference: Iterator[tuple[Any, Any]], name: str, needed: set[str], held: dict) -> Any:
    """The model's value of FX node `name`, stepping the program on as far as needed and
    holding only values that a later ONNX value still wants."""
    import torch

    while name not in held:
        try:
            node, value = next(reference)
        except StopIteration:
            return None
        if node.name in needed:
            held[node.name] = to_numpy(value) if isinstance(value, torch.Tensor) else None
    return held.pop(name)


def _fetcher(
    onnx_model: Any, wanted: Sequence[str], sizes: dict[str, int], inputs: Sequence[Any]
) -> Fetcher:
    graph_inputs = {i.name for i in onnx_model.graph.initializer}
    names = [i.name for i in onnx_model.graph.input if i.name not in graph_inputs]
    feed = {name: to_numpy(x) for name, x in zip(names, inputs)}
    return Fetcher(onnx_model, wanted, sizes, feed)


def _within(scope: str, module: str) -> bool:
    return module == "" or scope == module or scope.startswith(module + ".")


@dataclass
class ModuleRun:
    """The eval-mode model's modules as forward hooks saw them: each one's output at its first
    call, the modules each one's output went into, and those that handed their input on
    unchanged (Dropout in eval mode, Identity)."""

    outputs: dict[str, list[np.ndarray]] = field(default_factory=dict)
    feeds: dict[str, set[str]] = field(default_factory=dict)
    unchanged: set[str] = field(default_factory=set)


def module_outputs(model: Any, inputs: Sequence[Any]) -> ModuleRun:
    """Each submodule's output at its first call in the eval-mode model, by forward hooks, on
    the path an exporter traces: with the fused attention fast path off, so that the layers
    inside nn.TransformerEncoderLayer run (and are paired) as the graph has them. A module
    that still outputs a nested tensor has no dense value and is left out."""
    import torch

    from exportcheck.numerics.metrics import flatten

    run = ModuleRun()
    made_by: dict[int, list[str]] = {}
    alive: list[Any] = []  # so that no tensor's id is reused while ids name producers

    def hook(name: str) -> Any:
        def record(_module: Any, args: Any, kwargs: Any, output: Any) -> None:
            received, tensors = flatten((args, kwargs)), flatten(output)
            for tensor in received:
                for producer in made_by.get(id(tensor), ()):
                    run.feeds.setdefault(producer, set()).add(name)
            for tensor in tensors:
                made_by.setdefault(id(tensor), []).append(name)
            alive.extend(tensors)
            if name in run.outputs or any(t.is_nested for t in (*received, *tensors)):
                return
            run.outputs[name] = [to_numpy(t) for t in tensors]
            if (
                len(received) == len(tensors) == 1
                and received[0].shape == tensors[0].shape
                and torch.equal(received[0], tensors[0])
            ):
                run.unchanged.add(name)

        return record

    handles = [m.register_forward_hook(hook(n), with_kwargs=True) for n, m in model.named_modules()]
    fast_path = torch.backends.mha.get_fastpath_enabled()
    try:
        torch.backends.mha.set_fastpath_enabled(False)
        with torch.no_grad():
            model(*inputs)
    finally:
        torch.backends.mha.set_fastpath_enabled(fast_path)
        for handle in handles:
            handle.remove()
    return run


FOLDED = "a module's output the exporter folded the next module into (BatchNorm into Conv)"


def _boundaries(
    steps: Sequence[Step], run: ModuleRun, graph_outputs: set[str], scope_of: dict[str, str]
) -> tuple[dict[str, tuple[str, int]], set[str]]:
    """ONNX value -> (module, output index): the values leaving a module's scope, where there
    are as many as the module has outputs; and the values left unpaired because a module the
    output went into in the model left no node of its own in the graph (folded into this one,
    as the legacy exporter folds BatchNorm into the Conv before it)."""
    consumers: dict[str, set[str]] = {}
    for step in steps:
        for used in step.inputs:
            consumers.setdefault(used, set()).add(scope_of[step.value])
    scopes = set(scope_of.values())
    absorbed = {
        name
        for name in run.outputs
        if name not in run.unchanged and not any(_within(scope, name) for scope in scopes)
    }
    boundary: dict[str, tuple[str, int]] = {}
    folded: set[str] = set()
    for name, values in run.outputs.items():
        leaving = [
            s.value
            for s in steps
            if _within(scope_of[s.value], name)
            and (
                s.value in graph_outputs
                or any(not _within(c, name) for c in consumers.get(s.value, ()))
            )
        ]
        if len(leaving) != len(values):
            continue
        if run.feeds.get(name, set()) & absorbed:
            folded.update(leaving)
            continue
        for index, value in enumerate(leaving):
            boundary.setdefault(value, (name, index))
    return boundary, folded - set(boundary)


def _module_places(steps: Sequence[Step], model: Any) -> dict[str, Place]:
    own: dict[str, list[Any]] = {}
    for step in steps:
        if step.node.op_type not in _NOT_VALUES:
            own.setdefault(scoped_module(step.node.name), []).append(step.node)
    places = {}
    for name, module in model.named_modules():
        nodes = own.get(name, [])
        path, line = forward_line(module)
        places[name] = Place(
            tuple(dict.fromkeys(n.name for n in nodes))[:8],
            tuple(dict.fromkeys(n.op_type for n in nodes))[:8],
            name,
            type(module).__name__,
            None,
            path,
            line,
        )
    return places


MAX_INSIDE = 256
"""Values compared pairwise inside the root module: beyond, the module's own nodes are named."""


def _inside(
    model: Any,
    inputs: Sequence[Any],
    steps: Sequence[Step],
    fetcher: Fetcher,
    place: Place,
) -> Place:
    """The operation inside the root module where the divergence starts, where names cannot
    tell: the legacy exporter keeps no operator names, so the module's own ONNX values and the
    module's FX values in the model's program are matched by value. The first ONNX node whose
    value no FX value of the module has, and the first FX node whose value the artifact never
    computes, are where they part."""
    import torch

    own = [
        s
        for s in steps
        if scoped_module(s.node.name) == place.module and s.node.op_type not in _NOT_VALUES
    ]
    try:
        program = model_program(model, inputs)
    except ReferenceUnavailable:
        return place
    expected: list[tuple[Any, np.ndarray]] = []
    for node, value in program_values(program, inputs):
        module, _ = module_from_stack(node.meta.get("nn_module_stack"))
        if (
            (module or "") == place.module
            and isinstance(value, torch.Tensor)
            and node.op == "call_function"
        ):
            expected.append((node, to_numpy(value)))
            if len(expected) > MAX_INSIDE:
                return place
    if not own or len(own) > MAX_INSIDE:
        return place
    actual = fetcher.fetch([s.value for s in own])

    def same(a: np.ndarray, e: np.ndarray) -> bool:
        if a.shape != e.shape:
            return False
        probe = Walk()
        point = probe.add("a", (), a.astype(e.dtype) if a.dtype != e.dtype else a, e, place)
        return point is not None and not point.diverges

    first_onnx = next(
        (s for s in own if not any(same(actual[s.value], e) for _, e in expected)), None
    )
    first_fx = next((n for n, e in expected if not any(same(a, e) for a in actual.values())), None)
    if first_onnx is None and first_fx is None:
        return place
    path, line = (
        user_frame(first_fx.meta.get("stack_trace")) if first_fx is not None else (None, None)
    )
    nodes = (first_onnx.node.name,) if first_onnx is not None else place.nodes
    ops = (first_onnx.node.op_type,) if first_onnx is not None else place.op_types
    return Place(
        nodes,
        ops,
        place.module,
        place.module_type,
        str(first_fx.target) if first_fx is not None else None,
        path or place.source_file,
        line if path else place.source_line,
    )


def trace_scoped_onnx(model: Any, onnx_model: Any, inputs: Sequence[Any], fmt: str) -> Localization:
    """The legacy exporter's graph, module by module: the values leaving each module's scope
    (its node names) against the module's output in the eval-mode model, by forward hooks."""
    run = module_outputs(model, inputs)
    outputs = run.outputs
    steps = list(_steps(onnx_model.graph))
    scope_of = {s.value: scoped_module(s.node.name) for s in steps}
    graph_outputs = {o.name for o in onnx_model.graph.output}
    boundary, folded = _boundaries(steps, run, graph_outputs, scope_of)
    wanted = [s.value for s in steps if s.value in boundary]
    sizes = {v: outputs[boundary[v][0]][boundary[v][1]].nbytes for v in wanted}
    fetcher = _fetcher(onnx_model, wanted, sizes, inputs)
    places = _module_places(steps, model)
    walk = Walk()
    candidates = 0
    for step in steps:
        if step.node.op_type in _NOT_VALUES:
            walk.pass_through(step.value, step.inputs)
            continue
        candidates += 1
        if step.value not in boundary:
            reason = FOLDED if step.value in folded else "a value inside a module"
            walk.skip(step.value, step.inputs, reason)
            continue
        name, index = boundary[step.value]
        walk.add(
            step.value, step.inputs, fetcher.get(step.value), outputs[name][index], places[name]
        )
    trace = walk.result(fmt, LABEL, "module scopes in node names (legacy exporter)", candidates)
    root = trace.root
    if root is None:
        return trace
    refined = _inside(model, inputs, steps, fetcher, root.place)
    points = tuple(replace(p, place=refined) if p is root else p for p in trace.points)
    return replace(trace, points=points)


def trace_onnx(model: Any, path: str, inputs: Sequence[Any], fmt: str) -> Localization:
    import onnx

    onnx_model = onnx.load(path)
    if is_dynamo_export(onnx_model):
        try:
            return trace_dynamo_onnx(model, onnx_model, inputs, fmt)
        except ReferenceUnavailable:
            pass
    return trace_scoped_onnx(model, onnx_model, inputs, fmt)

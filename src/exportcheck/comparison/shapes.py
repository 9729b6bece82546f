"""The dynamic dimensions an artifact declares beyond the batch, and the inputs that exercise
each one at another valid size: one extra run per dimension, never one per combination.

Sizes come from the artifact itself: an ExportedProgram's range constraints, an ONNX file's
symbolic dimensions (which carry no range, so any size of at least one is valid)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

_IDENTIFIER = re.compile(r"^[A-Za-z_]\w*$")
_UNBOUNDED = 1 << 62


@dataclass(frozen=True)
class Dimension:
    """One symbol the artifact leaves dynamic, where it sits in the inputs, its valid range.

    `axes` maps (input index, axis) to how that axis follows the symbol: None for the symbol
    itself, else a function of the symbol's size (an ExportedProgram's derived dimension)."""

    name: str
    axes: tuple[tuple[int, int], ...]
    low: int = 1
    high: int = _UNBOUNDED
    derived: tuple[tuple[int, int, Any], ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class DimensionVariant:
    """The example inputs with one dimension at another size."""

    dimension: Dimension
    example: int
    size: int
    inputs: tuple[Any, ...]
    references: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The eval-mode model's outputs at these inputs, per device, computed once."""

    @property
    def label(self) -> str:
        """`seq=11`: the dimension and the size it was run at."""
        return f"{self.dimension.name}={self.size}"


@dataclass(frozen=True)
class DeclaredShapes:
    """What an artifact declares dynamic: its batch (the first axis of every input), which the
    second-batch check exercises, and each other dimension."""

    batch_is_dynamic: bool
    dimensions: tuple[Dimension, ...] = ()


NOTHING_DECLARED = DeclaredShapes(False)
"""A TorchScript module's: its inputs carry no shapes."""


def onnx_shapes(path: str) -> DeclaredShapes:
    """The dynamic dimensions of an ONNX file's graph inputs, read in one parse. The batch is
    dynamic when every input has a first axis without a fixed size; a symbol that sits on the
    first axis of any input is the batch, and the other symbols are its dimensions. An axis
    whose symbol is an expression (`2*s0`) takes its symbols out: its size cannot be computed
    without evaluating text from the file."""
    from exportcheck.readers.onnx import load_model

    graph = load_model(path).graph
    initializers = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    axes: dict[str, list[tuple[int, int]]] = {}
    batch: set[str] = set()
    excluded: set[str] = set()
    batch_is_dynamic = bool(inputs)
    for index, value in enumerate(inputs):
        dims = value.type.tensor_type.shape.dim
        if not dims or dims[0].HasField("dim_value"):
            batch_is_dynamic = False
        for axis, dim in enumerate(dims):
            if dim.HasField("dim_value"):
                continue
            name = dim.dim_param or f"{value.name}[{axis}]"
            if not _IDENTIFIER.match(name):
                excluded.update(re.findall(r"[A-Za-z_]\w*", name))
                continue
            if axis == 0:
                batch.add(name)
            axes.setdefault(name, []).append((index, axis))
    dimensions = tuple(
        Dimension(name, tuple(where))
        for name, where in axes.items()
        if name not in batch and name not in excluded
    )
    return DeclaredShapes(batch_is_dynamic, dimensions)


def program_shapes(program: Any) -> DeclaredShapes:
    """An ExportedProgram's dynamic batch and its other dimensions (`program_dimensions`)."""
    return DeclaredShapes(program_batch_is_dynamic(program), tuple(program_dimensions(program)))


def program_batch_is_dynamic(program: Any) -> bool:
    """Whether every user input of an ExportedProgram kept a symbolic batch dimension."""
    import torch

    user_inputs = set(program.graph_signature.user_inputs)
    shapes = [
        node.meta["val"].shape
        for node in program.graph_module.graph.nodes
        if node.op == "placeholder"
        and node.name in user_inputs
        and "val" in node.meta
        and hasattr(node.meta["val"], "shape")
        and len(node.meta["val"].shape) > 0
    ]
    return bool(shapes) and all(isinstance(shape[0], torch.SymInt) for shape in shapes)


def program_dimensions(program: Any) -> list[Dimension]:
    """The symbols of an ExportedProgram's user inputs other than the batch, each with the
    range torch.export proved for it and the derived axes that follow it."""
    import sympy

    user_inputs = list(program.graph_signature.user_inputs)
    shapes: list[tuple[Any, ...]] = []
    by_name = {
        node.name: node.meta.get("val")
        for node in program.graph_module.graph.nodes
        if node.op == "placeholder"
    }
    for name in user_inputs:
        value = by_name.get(name)
        shapes.append(tuple(getattr(value, "shape", ())))
    plain: dict[Any, list[tuple[int, int]]] = {}
    derived: dict[Any, list[tuple[int, int, Any]]] = {}
    batch: set[Any] = set()
    for index, shape in enumerate(shapes):
        for axis, size in enumerate(shape):
            expr = getattr(getattr(size, "node", None), "expr", None)
            if expr is None or not expr.free_symbols:
                continue
            if isinstance(expr, sympy.Symbol):
                plain.setdefault(expr, []).append((index, axis))
                if axis == 0:
                    batch.add(expr)
            else:
                for symbol in expr.free_symbols:
                    derived.setdefault(symbol, []).append((index, axis, expr))
    found = []
    for symbol, where in plain.items():
        if symbol in batch:
            continue
        low, high = _range(program.range_constraints.get(symbol))
        found.append(
            Dimension(str(symbol), tuple(where), low, high, tuple(derived.get(symbol, ())))
        )
    return found


def _range(constraint: Any) -> tuple[int, int]:
    if constraint is None:
        return 1, _UNBOUNDED
    try:
        low = int(constraint.lower)
    except (TypeError, ValueError):
        low = 1
    try:
        high = int(constraint.upper)
    except (TypeError, ValueError, OverflowError):
        high = _UNBOUNDED
    return max(low, 1), high


def other_size(example: int, dimension: Dimension) -> int | None:
    """One valid size besides the example: one more, else one less; None when the range
    holds the example size alone."""
    for size in (example + 1, example - 1):
        if dimension.low <= size <= dimension.high and size >= 1:
            return size
    return None


def resized(tensor: Any, axis: int, size: int) -> Any:
    """The tensor cut or grown to `size` along `axis`; grown by repeating its own slices, so
    token ids, masks and positions keep values the model takes."""
    import torch

    current = tensor.shape[axis]
    if size <= current:
        return tensor.narrow(axis, 0, size).contiguous()
    pieces = [tensor]
    missing = size - current
    while missing > 0:
        take = min(missing, current)
        pieces.append(tensor.narrow(axis, 0, take))
        missing -= take
    return torch.cat(pieces, dim=axis)


def variants(
    inputs: Sequence[Any], dimensions: Sequence[Dimension]
) -> tuple[list[DimensionVariant], list[str]]:
    """One variant per dimension, and why each dimension that has none was left out."""
    made: list[DimensionVariant] = []
    left_out: list[str] = []
    for dimension in dimensions:
        where = [(i, a) for i, a in dimension.axes if i < len(inputs) and a < inputs[i].dim()]
        if len(where) != len(dimension.axes):
            left_out.append(f"{dimension.name}: the example inputs do not have its axes")
            continue
        sizes = {int(inputs[i].shape[a]) for i, a in where}
        if len(sizes) != 1:
            left_out.append(f"{dimension.name}: the example inputs disagree on its size")
            continue
        example = sizes.pop()
        size = other_size(example, dimension)
        if size is None:
            left_out.append(f"{dimension.name}: its range allows the example size {example} only")
            continue
        changed = list(inputs)
        for index, axis in where:
            changed[index] = resized(changed[index], axis, size)
        try:
            for index, axis, expr in dimension.derived:
                symbol = next(s for s in expr.free_symbols if str(s) == dimension.name)
                old = int(expr.subs(symbol, example)) if len(expr.free_symbols) == 1 else None
                if old is None or old != int(inputs[index].shape[axis]):
                    raise ValueError("derived from several symbols")
                changed[index] = resized(changed[index], axis, int(expr.subs(symbol, size)))
        except (ValueError, TypeError, StopIteration):
            left_out.append(f"{dimension.name}: other dimensions are derived from it")
            continue
        made.append(DimensionVariant(dimension, example, size, tuple(changed)))
    return made, left_out

"""Inputs for proving a repaired artifact without its model: made from the artifact's own
input declarations (a dynamic batch dimension gets `BATCH` samples so companions can differ), a
boolean mode input set to false (eval), an `--input-shape` given overriding."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from exportcheck.errors import InputSpecError

BATCH = 3
_INTEGER_KINDS = ("i", "u")


def _tensor(shape: Sequence[int], dtype: Any, seed: int) -> Any:
    import numpy as np
    import torch

    generator = torch.Generator().manual_seed(seed)
    kind = np.dtype(dtype).kind
    if kind == "b":
        return torch.zeros(tuple(shape), dtype=torch.bool)
    if kind in _INTEGER_KINDS:
        return torch.randint(0, 4, tuple(shape), generator=generator).to(
            torch.from_numpy(np.zeros(0, dtype)).dtype
        )
    values = torch.randn(tuple(shape), generator=generator)
    return values.to(torch.from_numpy(np.zeros(0, dtype)).dtype)


def _shape(dims: Sequence[int | None], name: str, path: str) -> list[int]:
    shape = []
    for position, dim in enumerate(dims):
        if dim is None:
            if position != 0:
                raise InputSpecError(
                    f"input {name!r} has a dynamic dimension {position}; give its shape "
                    "with --input-shape (or prove with --against)",
                    subject=path,
                )
            dim = BATCH
        shape.append(dim)
    return shape


def onnx_inputs(path: str, shapes: Sequence[tuple[tuple[int, ...], str]] = ()) -> tuple[Any, ...]:
    import onnx.helper

    from exportcheck.readers.onnx import load_model

    graph = load_model(path).graph
    stored = {t.name for t in graph.initializer}
    made = []
    declared = [v for v in graph.input if v.name not in stored]
    for position, value in enumerate(declared):
        tensor_type = value.type.tensor_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
        if position < len(shapes):
            made.append(_tensor(shapes[position][0], dtype, seed=position))
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
        made.append(_tensor(_shape(dims, value.name, path), dtype, seed=position))
    return tuple(made)


def program_inputs(
    program: Any, shapes: Sequence[tuple[tuple[int, ...], str]] = ()
) -> tuple[Any, ...]:
    """An ExportedProgram's user inputs, shaped by their example values' hints."""
    import torch

    user = set(program.graph_signature.user_inputs)
    made = []
    for node in program.graph.nodes:
        if node.op != "placeholder" or node.name not in user:
            continue
        position = len(made)
        value = node.meta.get("val")
        if position < len(shapes):
            dims: list[int] = list(shapes[position][0])
        else:
            dims = []
            for dim in getattr(value, "shape", ()):
                try:
                    dims.append(int(dim))
                except (TypeError, ValueError):
                    dims.append(BATCH)
        dtype = getattr(value, "dtype", torch.float32)
        numpy_dtype = torch.empty(0, dtype=dtype).numpy().dtype
        made.append(_tensor(dims, numpy_dtype, seed=position))
    return tuple(made)

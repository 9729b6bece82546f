"""Outputs the eval-mode model leaves undefined: values it computes differently with autograd
on and off (a fast path such as the nested tensors of `nn.TransformerEncoder` with a padding
mask, which leaves padded positions at zero). There the reference is ambiguous, not the
artifact wrong; the artifact is judged only where both agree."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from exportcheck.localization.trace import difference
from exportcheck.numerics.metrics import default_tolerance, flatten, scaled_tolerance, to_numpy
from exportcheck.numerics.runtime_imports import onnxruntime


@dataclass(frozen=True)
class Ambiguity:
    """One output the model computes two ways: how many values differ, and whether the
    artifact agrees with the model everywhere the two ways agree."""

    output: int
    undefined: int
    total: int
    artifact_agrees_where_defined: bool

    def describe(self) -> str:
        return (
            f"output_{self.output}: the eval-mode model itself gives {self.undefined} of "
            f"{self.total} values differently with autograd on and off (a fast path, such as "
            "nested tensors at padded positions), so the reference leaves them undefined"
        )


def _outputs(model: Any, inputs: Sequence[Any], *, grad: bool) -> list[np.ndarray]:
    import torch

    if grad:
        with torch.enable_grad():
            return [to_numpy(t) for t in flatten(model(*inputs))]
    with torch.inference_mode():
        return [to_numpy(t) for t in flatten(model(*inputs))]


def ambiguous_outputs(model: Any, inputs: Sequence[Any], actual: Sequence[Any]) -> list[Ambiguity]:
    """The outputs the model computes differently with autograd on and off, each with the
    artifact's `actual` output judged only at the positions both ways agree on."""
    without = _outputs(model, inputs, grad=False)
    again = _outputs(model, inputs, grad=False)
    if any(a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(without, again)):
        return []  # a random model: its variations are the probes' and the mode rules' business
    with_grad = _outputs(model, inputs, grad=True)
    found = []
    for index, (a, b) in enumerate(zip(without, with_grad)):
        if a.shape != b.shape or a.dtype.kind not in "fc":
            continue
        tolerance = scaled_tolerance(default_tolerance(a.dtype), a)
        bound = tolerance.atol + tolerance.rtol * np.abs(a.astype(np.float64))
        undefined = np.abs(a.astype(np.float64) - b.astype(np.float64)) > bound
        if not undefined.any() or index >= len(actual):
            continue
        out = np.asarray(actual[index])
        agrees = (
            out.shape == a.shape
            and not difference(np.where(undefined, a, out).astype(a.dtype), a, tolerance)[2]
        )
        found.append(Ambiguity(index, int(undefined.sum()), int(undefined.size), agrees))
    return found


def artifact_outputs(artifact: Any, kind: str, inputs: Sequence[Any]) -> list[np.ndarray]:
    """The artifact's outputs on `inputs`: ONNX Runtime at ORT_DISABLE_ALL, or torch."""
    import torch

    if kind == "onnx":
        ort = onnxruntime()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.log_severity_level = 4
        session = ort.InferenceSession(artifact, options, providers=["CPUExecutionProvider"])
        feed = {i.name: to_numpy(x) for i, x in zip(session.get_inputs(), inputs)}
        return [np.asarray(v) for v in session.run(None, feed)]
    module = artifact if kind == "torchscript" else artifact.module()
    with torch.inference_mode():
        return [to_numpy(t) for t in flatten(module(*inputs))]

"""Tensor plumbing shared by probes and comparisons: flattening outputs, metrics, tolerances."""

from __future__ import annotations

from typing import Any

import numpy as np

from exportcheck.results.comparison import OutputMetrics, Tolerance


def flatten(value: Any) -> list[Any]:
    """Every tensor in a nested output (tuples, lists, dicts, named tuples), in order."""
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for key in value for t in flatten(value[key])]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in flatten(item)]
    return []


def to_numpy(tensor: Any) -> np.ndarray:
    import torch

    if isinstance(tensor, np.ndarray):
        return tensor
    tensor = tensor.detach()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    return tensor.cpu().numpy()


def default_tolerance(dtype: Any) -> Tolerance:
    """torch.testing.assert_close's defaults for the dtype (exact for integers and bool)."""
    import torch

    if isinstance(dtype, np.dtype):
        dtype = {
            np.dtype("float16"): torch.float16,
            np.dtype("float32"): torch.float32,
            np.dtype("float64"): torch.float64,
        }.get(dtype, torch.int64 if dtype.kind in "iub" else torch.float32)
    try:
        from torch.testing._comparison import default_tolerances

        rtol, atol = default_tolerances(dtype)
    except (ImportError, TypeError, AttributeError):
        rtol, atol = {
            torch.float16: (1e-3, 1e-5),
            torch.bfloat16: (1.6e-2, 1e-5),
            torch.float64: (1e-7, 1e-7),
        }.get(dtype, (1.3e-6, 1e-5))
    return Tolerance(
        rtol=float(rtol),
        atol=float(atol),
        source=f"torch.testing default for {str(dtype).replace('torch.', '')}",
    )


def measure(actual: Any, expected: Any, tolerance: Tolerance) -> OutputMetrics:
    """Max abs/rel difference and mismatch count of `actual` against `expected` (numpy arrays)."""
    a = np.asarray(actual)
    e = np.asarray(expected)
    base = dict(
        shape=tuple(a.shape),
        expected_shape=tuple(e.shape),
        dtype=str(a.dtype),
        expected_dtype=str(e.dtype),
    )
    if a.dtype.kind in "fc":
        nonfinite = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
    else:
        nonfinite = 0
    if e.dtype.kind in "fc":
        expected_nonfinite = int(np.size(e) - np.count_nonzero(np.isfinite(e)))
    else:
        expected_nonfinite = 0
    if a.shape != e.shape:
        return OutputMetrics(
            **base,
            max_abs=None,
            max_rel=None,
            mismatched=int(e.size),
            total=int(e.size),
            nonfinite=nonfinite,
            expected_nonfinite=expected_nonfinite,
        )
    af = a.astype(np.float64, copy=False)
    ef = e.astype(np.float64, copy=False)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        diff = np.abs(af - ef)
        both_nan = np.isnan(af) & np.isnan(ef)
        same_inf = np.isinf(af) & (af == ef)
        diff = np.where(both_nan | same_inf, 0.0, diff)
        diff = np.where(np.isnan(diff), np.inf, diff)
        allowed = tolerance.atol + tolerance.rtol * np.abs(ef)
        mismatched = int(np.count_nonzero(diff > allowed))
        rel = diff / np.maximum(np.abs(ef), np.finfo(np.float64).tiny)
        rel = np.where(diff == 0, 0.0, rel)
    total = int(e.size)
    max_abs = float(diff.max()) if total else 0.0
    max_rel = float(rel.max()) if total else 0.0
    return OutputMetrics(
        **base,
        max_abs=max_abs,
        max_rel=max_rel,
        mismatched=mismatched,
        total=total,
        nonfinite=nonfinite,
        expected_nonfinite=expected_nonfinite,
    )

"""Tensor plumbing shared by probes and comparisons: flattening outputs, metrics, tolerances."""

from __future__ import annotations

from typing import Any

import numpy as np

from exportcheck.results.comparison import OutputMetrics, Tolerance

# torch.testing.assert_close's defaults (torch/testing/_comparison.py), by dtype name; integer
# and bool outputs are compared exactly. Kept here so a dtype is judged the same whether it
# arrives as a torch dtype, a numpy dtype or ml_dtypes' bfloat16.
_DEFAULTS: dict[str, tuple[float, float]] = {
    "float16": (1e-3, 1e-5),
    "bfloat16": (1.6e-2, 1e-5),
    "float32": (1.3e-6, 1e-5),
    "float64": (1e-7, 1e-7),
    "complex32": (1e-3, 1e-5),
    "complex64": (1.3e-6, 1e-5),
    "complex128": (1e-7, 1e-7),
}
_EXACT_KINDS = "iub"
# Beyond this many points the margin envelope is not stored and re-judging is refused.
MAX_ENVELOPE = 256


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
    """A CPU numpy copy that keeps the dtype: bfloat16 stays bfloat16 (ml_dtypes, onnx's own
    dependency), so a tolerance is chosen from the dtype the artifact produced."""
    if isinstance(tensor, np.ndarray):
        return tensor
    import torch

    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        import ml_dtypes

        return tensor.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return tensor.numpy()


def dtype_name(dtype: Any) -> str:
    """`float32` for torch.float32, np.float32 and np.dtype('float32') alike."""
    if isinstance(dtype, np.dtype):
        return dtype.name
    return str(dtype).replace("torch.", "")


def default_tolerance(dtype: Any) -> Tolerance:
    """torch.testing.assert_close's defaults for the dtype; exact for integers and bool."""
    name = dtype_name(dtype)
    if name in _DEFAULTS:
        rtol, atol = _DEFAULTS[name]
    elif name == "bool" or name.startswith(("int", "uint")) or _numpy_kind(name) in _EXACT_KINDS:
        rtol, atol = 0.0, 0.0
    else:
        rtol, atol = _DEFAULTS["float32"]
        return Tolerance(rtol, atol, f"torch.testing default for float32 (unknown dtype {name})")
    return Tolerance(rtol=rtol, atol=atol, source=f"torch.testing default for {name}")


def _numpy_kind(name: str) -> str:
    try:
        return np.dtype(name).kind
    except TypeError:
        return ""


def coarser_tolerance(actual_dtype: Any, expected_dtype: Any) -> Tolerance:
    """The default of whichever dtype is less precise: an fp16 artifact against an fp32
    reference is judged at fp16's tolerance, never at the reference's."""
    a, e = default_tolerance(actual_dtype), default_tolerance(expected_dtype)
    return a if (a.rtol, a.atol) >= (e.rtol, e.atol) else e


def margin_envelope(expected_abs: np.ndarray, diff: np.ndarray) -> tuple[tuple[float, float], ...]:
    """The points (|expected|, |actual - expected|) that decide the verdict at every tolerance.

    Every element passes at (rtol, atol) exactly when max_i(diff_i - rtol * |e_i|) <= atol.
    For rtol >= 0 that maximum is attained on the upper convex hull of the points, on the part
    running from the smallest |e| to the largest difference: those vertices are all a saved
    comparison needs to be re-judged exactly at any other tolerance.
    """
    # An element equal to its reference passes at every tolerance (and may sit at |e| = inf).
    differing = diff > 0
    expected_abs, diff = expected_abs[differing], diff[differing]
    if diff.size == 0:
        return ()
    order = np.lexsort((-diff, expected_abs))
    e, d = expected_abs[order], diff[order]
    # A point is a candidate only if no point with smaller-or-equal |e| has as large a diff.
    running = np.maximum.accumulate(d)
    keep = np.empty(d.shape, dtype=bool)
    keep[0] = True
    keep[1:] = d[1:] > running[:-1]
    hull: list[tuple[float, float]] = []
    for point in zip(e[keep].tolist(), d[keep].tolist()):
        while len(hull) >= 2 and _not_above(hull[-2], hull[-1], point):
            hull.pop()
        hull.append(point)
    return tuple(hull)


def _not_above(
    first: tuple[float, float], middle: tuple[float, float], last: tuple[float, float]
) -> bool:
    """Whether `middle` lies on or below the chord from `first` to `last` (never a maximizer)."""
    (x1, y1), (x2, y2), (x3, y3) = first, middle, last
    return (y2 - y1) * (x3 - x1) <= (y3 - y1) * (x2 - x1)


def measure(actual: Any, expected: Any, tolerance: Tolerance) -> OutputMetrics:
    """Max abs/rel difference, the mismatch count at `tolerance`, and the margin envelope that
    lets the metrics be re-judged exactly at any other tolerance (numpy arrays in)."""
    a = np.asarray(actual)
    e = np.asarray(expected)
    base = dict(
        shape=tuple(a.shape),
        expected_shape=tuple(e.shape),
        dtype=dtype_name(a.dtype),
        expected_dtype=dtype_name(e.dtype),
        counted_at=(tolerance.rtol, tolerance.atol),
        magnitude=magnitude(e),
    )
    af = a.astype(np.float64) if a.dtype.kind != "c" else a.astype(np.complex128)
    ef = e.astype(np.float64) if e.dtype.kind != "c" else e.astype(np.complex128)
    nonfinite = int(np.size(af) - np.count_nonzero(np.isfinite(af)))
    expected_nonfinite = int(np.size(ef) - np.count_nonzero(np.isfinite(ef)))
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
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        diff = np.abs(af - ef)
        both_nan = np.isnan(af) & np.isnan(ef)
        same_inf = np.isinf(af) & (af == ef)
        diff = np.where(both_nan | same_inf, 0.0, diff)
        diff = np.where(np.isnan(diff), np.inf, diff).astype(np.float64).ravel()
        expected_abs = np.abs(ef).astype(np.float64).ravel()
        expected_abs = np.where(np.isnan(expected_abs), np.inf, expected_abs)
        close = np.isclose(af, ef, rtol=tolerance.rtol, atol=tolerance.atol, equal_nan=True)
        mismatched = int(close.size - np.count_nonzero(close))
        rel = diff / np.maximum(expected_abs, np.finfo(np.float64).tiny)
        rel = np.where(diff == 0, 0.0, rel)
    total = int(e.size)
    max_abs = float(diff.max()) if total else 0.0
    max_rel = float(rel.max()) if total else 0.0
    envelope: tuple[tuple[float, float], ...] | None = None
    if np.isfinite(max_abs):
        points = margin_envelope(expected_abs, diff)
        envelope = points if len(points) <= MAX_ENVELOPE else None
    return OutputMetrics(
        **base,
        max_abs=max_abs,
        max_rel=max_rel,
        mismatched=mismatched,
        total=total,
        nonfinite=nonfinite,
        expected_nonfinite=expected_nonfinite,
        envelope=envelope,
    )


# Rounding through a network grows with its depth and with the magnitude of the values, not
# with each element's own size: a logit of 7.5e7 carries an absolute error of ~100 after fifty
# float32 layers while a neighbour near zero carries the same absolute error. Differences are
# therefore also allowed up to this many machine epsilons of the largest magnitude compared,
# never more than SCALE_SHARE_CAP of it (float16, bfloat16).
SCALE_EPSILONS = 64
SCALE_SHARE_CAP = 1e-3


def scale_share(dtype: Any) -> float:
    """The share of the largest magnitude a difference in `dtype` may reach by rounding."""
    name = dtype_name(dtype)
    try:
        eps = float(np.finfo(np.dtype(name)).eps)
    except ValueError:  # integers and bool are compared exactly
        return 0.0
    except TypeError:
        if name != "bfloat16":
            return 0.0
        eps = 2.0**-7
    return min(SCALE_EPSILONS * eps, SCALE_SHARE_CAP)


def magnitude(values: Any) -> float:
    """The largest finite |value| (0 for none): the scale a difference is judged against."""
    a = np.asarray(values)
    if a.size == 0 or (a.dtype.kind not in "fc" and dtype_name(a.dtype) != "bfloat16"):
        return 0.0
    finite = np.abs(a.astype(np.complex128 if a.dtype.kind == "c" else np.float64))
    finite = finite[np.isfinite(finite)]
    return float(finite.max()) if finite.size else 0.0


def scaled_tolerance(base: Tolerance, expected: Any, dtype: Any = None) -> Tolerance:
    """`base`, with atol raised to the rounding share of the largest |expected| where that is
    larger: a difference is judged relative to the magnitude of the values compared."""
    share = scale_share(dtype if dtype is not None else np.asarray(expected).dtype)
    scale = magnitude(expected)
    floor = share * scale
    if floor <= base.atol:
        return base
    return Tolerance(
        rtol=base.rtol,
        atol=floor,
        source=f"{base.source}, atol raised to {share:.2g} of the largest magnitude {scale:.3g}",
        noise=base.noise,
    )

"""The numeric core: dtype defaults, measure, judge, exact re-judging, tolerance precedence."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
import torch

from exportcheck.comparison.reference import Noise, Tolerances, output_noise
from exportcheck.numerics.metrics import (
    coarser_tolerance,
    default_tolerance,
    margin_envelope,
    measure,
    to_numpy,
)
from exportcheck.results.comparison import (
    Comparison,
    NotRejudgeable,
    OutputMetrics,
    Tolerance,
    judge,
)


@pytest.mark.parametrize(
    ("dtype", "rtol", "atol"),
    [
        (torch.bfloat16, 1.6e-2, 1e-5),
        (torch.float16, 1e-3, 1e-5),
        (torch.float32, 1.3e-6, 1e-5),
        (torch.float64, 1e-7, 1e-7),
        (torch.int64, 0.0, 0.0),
        (torch.uint8, 0.0, 0.0),
        (torch.bool, 0.0, 0.0),
        (np.dtype("float32"), 1.3e-6, 1e-5),
        (np.dtype("int32"), 0.0, 0.0),
        (np.dtype(ml_dtypes.bfloat16), 1.6e-2, 1e-5),
    ],
)
def test_default_tolerance_per_dtype(dtype, rtol, atol):
    tolerance = default_tolerance(dtype)
    assert (tolerance.rtol, tolerance.atol) == (rtol, atol)


def test_bfloat16_output_keeps_its_dtype_and_tolerance():
    tensor = torch.tensor([1.0, 2.0], dtype=torch.bfloat16)
    array = to_numpy(tensor)
    assert array.dtype == np.dtype(ml_dtypes.bfloat16)
    reference = np.array([1.0, 2.0], dtype=np.float32)
    assert coarser_tolerance(array.dtype, reference.dtype).rtol == 1.6e-2
    # 2.0 vs 2.015625 (one bf16 step) is within bf16's rtol, far outside float32's.
    bumped = to_numpy(torch.tensor([1.0, 2.015625], dtype=torch.bfloat16))
    tolerance = Tolerances().for_output("y", reference, bumped)
    assert tolerance.source.startswith("torch.testing default for bfloat16")
    assert tolerance.rtol == 1.6e-2
    assert Comparison(
        "m", None, "onnx", "ort", "cpu", "y", measure(bumped, reference, tolerance), tolerance
    ).passed


def test_measure_hand_computed():
    expected = np.array([1.0, -2.0, 4.0, 0.5], dtype=np.float32)
    actual = np.array([1.0, -2.5, 4.1, 0.501], dtype=np.float32)
    tolerance = Tolerance(rtol=0.01, atol=0.01)
    m = measure(actual, expected, tolerance)
    # |a-e| = 0, 0.5, 0.1, 0.001; allowed = 0.02, 0.03, 0.05, 0.015: elements 1 and 2 fail.
    assert m.mismatched == 2 and m.total == 4
    assert m.max_abs == pytest.approx(0.5, rel=1e-6)
    assert m.max_rel == pytest.approx(0.25, rel=1e-6)
    assert m.counted_at == (0.01, 0.01)
    assert not judge(m, tolerance)
    assert judge(m, Tolerance(rtol=0.25, atol=0.0))
    assert not judge(m, Tolerance(rtol=0.2, atol=0.099))
    # 0.5 <= 0.1 + 0.2 * 2, 0.1 <= 0.1 + 0.2 * 4 and 0.001 <= 0.1 + 0.2 * 0.5
    assert judge(m, Tolerance(rtol=0.2, atol=0.1))


def test_measure_shapes_and_nonfinite():
    m = measure(np.zeros((2, 3)), np.zeros((3, 2)), Tolerance(1.0, 1.0))
    assert not m.shape_ok and not judge(m, Tolerance(1.0, 1.0))
    nan = measure(np.array([np.nan, 1.0]), np.array([0.0, 1.0]), Tolerance(1.0, 1.0))
    assert nan.nonfinite == 1 and nan.max_abs == float("inf")
    assert not judge(nan, Tolerance(1e9, 1e9))
    both = measure(np.array([np.nan, np.inf]), np.array([np.nan, np.inf]), Tolerance(0.0, 0.0))
    assert both.max_abs == 0.0 and judge(both, Tolerance(0.0, 0.0))


def test_envelope_is_the_upper_left_hull():
    expected = np.array([0.0, 1.0, 2.0, 3.0, 1.0, 0.5])
    diff = np.array([0.1, 1.0, 0.6, 2.0, 0.2, 0.05])
    # Dominated: (1, 0.2) by (1, 1.0), (0.5, 0.05) by (0, 0.1), (2, 0.6) by (1, 1.0); (1, 1.0)
    # lies above the chord from (0, 0.1) to (3, 2.0) (0.733 at |e| = 1).
    assert margin_envelope(expected, diff) == ((0.0, 0.1), (1.0, 1.0), (3.0, 2.0))


def test_rejudging_is_exact_at_any_tolerance():
    rng = np.random.default_rng(0)
    expected = rng.normal(size=5000) * 3
    actual = expected + rng.normal(size=5000) * 1e-3 * (1 + np.abs(expected))
    first = measure(actual, expected, Tolerance(1e-3, 1e-3))
    assert first.envelope is not None and len(first.envelope) < 64
    for rtol in (0.0, 1e-4, 1e-3, 3e-3, 1e-2):
        for atol in (0.0, 1e-4, 1e-3, 3e-3, 1e-2):
            fresh = measure(actual, expected, Tolerance(rtol, atol))
            assert judge(first, Tolerance(rtol, atol)) == (fresh.mismatched == 0), (rtol, atol)


def test_stored_comparison_rejudged_at_a_stricter_tolerance_fails_like_a_fresh_run():
    expected = np.array([1.0, 10.0])
    actual = np.array([1.0 + 2e-5, 10.0])
    loose = Tolerance(1e-3, 1e-3)
    saved = Comparison(
        "m", None, "onnx", "ort", "cpu", "y", measure(actual, expected, loose), loose
    )
    assert saved.passed
    assert not saved.rejudged(Tolerance(1.3e-6, 1e-5)).passed
    assert saved.rejudged(Tolerance(1.3e-6, 2e-5)).passed


def test_rejudging_without_an_envelope_is_refused_with_the_reason():
    counted = OutputMetrics(
        shape=(2,),
        expected_shape=(2,),
        dtype="float32",
        expected_dtype="float32",
        max_abs=0.5,
        max_rel=0.5,
        mismatched=0,
        total=2,
        counted_at=(1.0, 1.0),
    )
    assert judge(counted, Tolerance(1.0, 1.0))
    assert judge(counted, Tolerance(0.0, 0.5))  # max_abs <= atol proves a pass
    with pytest.raises(NotRejudgeable, match="counted at rtol=1 atol=1"):
        judge(counted, Tolerance(0.1, 0.1))


def test_overrides_take_precedence():
    expected = np.ones(3, dtype=np.float32)
    noise = Noise(1e-5)
    per_output = Tolerance(0.5, 0.5, "output-tolerances.y in exportcheck.toml")
    tolerances = Tolerances(rtol=0.0, per_output={"y": per_output})
    assert tolerances.for_output("y", expected, expected, noise) is per_output
    flag = tolerances.for_output("z", expected, expected, noise)
    assert (flag.rtol, flag.atol, flag.source) == (0.0, 1e-5, "command line")
    assert Tolerances(atol=0.0).for_output("z", expected) == Tolerance(1.3e-6, 0.0, "command line")


def test_noise_widens_the_default_only_when_larger():
    expected = np.ones(3, dtype=np.float32)
    wide = Tolerances().for_output("y", expected, expected, Noise(4e-6))
    assert (wide.rtol, wide.atol, wide.noise) == (1.3e-6, pytest.approx(4e-5), 4e-6)
    assert wide.source.startswith("10 x model noise 4e-06")
    narrow = Tolerances().for_output("y", expected, expected, Noise(1e-7))
    assert (narrow.rtol, narrow.atol) == (1.3e-6, 1e-5) and narrow.noise == 1e-7
    unused = Tolerances().for_output("y", expected, expected, Noise(None, "int64 output"))
    assert (unused.atol, unused.noise) == (1e-5, None) and "int64 output" in unused.source


def test_output_noise_rejects_what_is_not_rounding():
    reference = np.array([1.0, 2.0], dtype=np.float32)
    assert output_noise(reference, np.array([1.0, 2.0 + 1e-6])).value == pytest.approx(1e-6)
    far = output_noise(reference, np.array([1.0, 2.1]))
    assert far.value is None and "more than rounding" in far.reason
    assert output_noise(np.array([1, 2]), np.array([1.0, 2.0])).value is None

"""ONNX Runtime's CUDA provider path (marker `cuda`): runs where onnxruntime-gpu and a GPU
exist, and says which of the two is missing everywhere else."""

from __future__ import annotations

import pytest

import exportcheck
from tests.conftest import build_sample

pytestmark = pytest.mark.cuda


@pytest.fixture
def cuda_provider() -> None:
    import onnxruntime as ort
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device is available to torch here")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip(
            f"onnxruntime {ort.__version__} has no CUDAExecutionProvider (install onnxruntime-gpu)"
        )


def test_onnxruntime_on_cuda_matches_the_cuda_reference_at_both_levels(cuda_provider):
    model, inputs = build_sample("cnn")
    report = exportcheck.validate(
        model, inputs, formats=["onnx"], devices="cuda", runtimes=["onnxruntime"]
    )
    cuda = [c for c in report.comparisons if c.provider == "CUDAExecutionProvider"]
    assert {c.optimization for c in cuda} == {"disable_all", "default"}
    assert all(c.passed for c in cuda), [c.to_dict() for c in cuda if not c.passed]
    cells = {c.run.configuration: c.verdict for c in report.runtime_matrix}
    assert cells == {
        "onnxruntime/CUDA/cuda/disable_all": "matches",
        "onnxruntime/CUDA/cuda/default": "matches",
    }


def test_a_training_dropout_is_random_on_the_cuda_provider(cuda_provider):
    model, inputs = build_sample("bad_functional_dropout")
    report = exportcheck.validate(
        model, inputs, formats=["onnx-legacy"], devices="cuda", runtimes=["onnxruntime"]
    )
    unstable = [f for f in report.findings if f.rule == "runtime-nondeterminism"]
    assert any("onnxruntime/CUDA/cuda/disable_all" in f.message for f in unstable)

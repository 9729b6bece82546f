"""CUDA checks (marker `cuda`): skipped on machines without a GPU; run by scripts/cuda_check.sh."""

from __future__ import annotations

import pytest
import torch

import exportcheck
from tests.conftest import build_sample

pytestmark = pytest.mark.cuda


def test_clean_cnn_passes_on_cuda_with_tf32_off():
    model, inputs = build_sample("cnn")
    report = exportcheck.validate(model, inputs, devices="all")
    cuda = [c for c in report.comparisons if c.device == "cuda"]
    assert cuda, "no comparison ran on CUDA"
    assert all(c.passed for c in cuda), [c.to_dict() for c in cuda if not c.passed]
    assert report.ok, report.to_dict()["findings"]
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert any("CUDAExecutionProvider" in s.reason for s in report.skipped)


def test_cross_device_reference_is_close_without_tf32():
    model, inputs = build_sample("cnn")
    report = exportcheck.validate(model, inputs, formats=["torchscript-trace"], devices="all")
    [*cross] = [c for c in report.comparisons if c.reference == "pytorch-eval cpu"]
    assert cross and all(c.passed for c in cross)
    assert max(c.metrics.max_abs for c in cross) < 1e-6


def test_tf32_is_restored_after_validation():
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    model, inputs = build_sample("cnn")
    exportcheck.validate(model, inputs, formats=["exported-program"], devices="cuda")
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before


@pytest.mark.parametrize("name", ["transformer", "cnn"])
def test_probes_tolerate_cuda_noise(name):
    model, inputs = build_sample(name)
    report = exportcheck.validate(model, inputs, formats=["torchscript-trace"], devices="cuda")
    assert not [
        f for f in report.findings if f.rule in ("batch-dependent-eval", "nondeterministic-eval")
    ]


def test_probes_catch_batch_statistics_on_cuda():
    model, inputs = build_sample("bad_batchnorm_no_running_stats")
    report = exportcheck.validate(model, inputs, formats=["torchscript-trace"], devices="cuda")
    assert any(
        f.rule == "batch-dependent-eval" and f.location.module == "bn" for f in report.findings
    )


def test_user_model_stays_on_cpu():
    model, inputs = build_sample("cnn")
    exportcheck.validate(model, inputs, formats=["torchscript-script"], devices="all")
    assert all(p.device.type == "cpu" for p in model.parameters())

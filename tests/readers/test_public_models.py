"""Public model families from pip, built from their configs with random weights (nothing
downloaded): their eval-mode exports inspect with no error."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from tests.conftest import require_model_family

pytestmark = pytest.mark.model_family

_PROBE = (
    "import json, sys\n"
    "from exportcheck.graph_checks import inspect_artifact\n"
    "findings = inspect_artifact(sys.argv[1])\n"
    "print(json.dumps({'findings': [[f.rule, f.severity.name.lower(), f.message] for f in findings],\n"
    "    'imported': sorted(m for m in ('torch', 'transformers', 'timm', 'torchvision')\n"
    "                       if m in sys.modules)}))\n"
)


def _inspect_in_subprocess(path) -> dict:
    """Inspects in a fresh interpreter, to see what the inspection itself imports."""
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _errors(report: dict) -> list:
    return [finding for finding in report["findings"] if finding[1] == "error"]


def test_timm_vit_with_drop_path_scripted_in_eval_has_no_error(tmp_path):
    timm = require_model_family("timm")
    model = timm.create_model(
        "vit_tiny_patch16_224",
        pretrained=False,
        drop_path_rate=0.1,
        img_size=32,
        depth=2,
        num_classes=10,
    ).eval()
    path = tmp_path / "vit.pt"
    torch.jit.script(model).save(str(path))
    report = _inspect_in_subprocess(path)
    assert _errors(report) == []
    assert "torch" not in report["imported"]


def test_torchvision_stochastic_depth_cnn_scripted_in_eval_has_no_error(tmp_path):
    torchvision = require_model_family("torchvision")

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(8, 8, 3, padding=1)
            self.stochastic_depth = torchvision.ops.StochasticDepth(0.2, "row")

        def forward(self, x):
            return x + self.stochastic_depth(self.conv(x))

    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), Block(), Block()).eval()
    path = tmp_path / "stochastic_depth.pt"
    torch.jit.script(model).save(str(path))
    report = _inspect_in_subprocess(path)
    assert _errors(report) == []
    assert "torch" not in report["imported"]


def test_transformers_bert_exported_program_inspects_without_transformers(tmp_path):
    transformers = require_model_family("transformers")
    config = transformers.BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=32,
    )
    model = transformers.BertModel(config).eval()
    program = torch.export.export(model, (torch.randint(0, 100, (1, 8)),))
    path = tmp_path / "bert.pt2"
    torch.export.save(program, str(path))
    report = _inspect_in_subprocess(path)
    assert _errors(report) == []
    assert report["imported"] == []

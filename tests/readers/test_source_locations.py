"""Findings point at the user's source line: .pt2 stack traces, TorchScript debug info and the
stack traces the dynamo ONNX exporter records."""

from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from exportcheck.graph_checks import inspect_artifact


class Head(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc(x)
        return F.dropout(x, 0.2)


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(4, 4)
        self.head = Head()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _dropout_line() -> int:
    lines, first = inspect.getsourcelines(Head.forward)
    (offset,) = [i for i, line in enumerate(lines) if "F.dropout(" in line]
    return first + offset


def _export(kind: str, path: str) -> None:
    model, inputs = Model().eval(), (torch.randn(2, 4),)
    if kind == "exported-program":
        torch.export.save(torch.export.export(model, inputs), path)
    elif kind == "onnx":
        torch.onnx.export(model, inputs, path, dynamo=True, verbose=False)
    elif kind == "onnx-legacy":
        torch.onnx.export(model, inputs, path, dynamo=False)
    elif kind == "torchscript-script":
        torch.jit.script(model).save(path)
    else:
        # The trace is taken of the buggy model: its dropout output differs run to run.
        torch.jit.trace(model, inputs, check_trace=False).save(path)


@pytest.mark.parametrize(
    ("kind", "suffix"),
    [
        ("exported-program", ".pt2"),
        ("torchscript-script", ".pt"),
        ("torchscript-trace", ".pt"),
        ("onnx", ".onnx"),
    ],
)
def test_training_dropout_points_at_the_f_dropout_line(tmp_path, kind, suffix):
    path = str(tmp_path / f"head{suffix}")
    _export(kind, path)
    findings = [f for f in inspect_artifact(path) if f.rule == "training-dropout"]
    assert findings, [f.rule for f in inspect_artifact(path)]
    (finding,) = findings
    assert finding.location.source_file == __file__
    assert finding.location.source_line == _dropout_line()


def test_an_archive_without_debug_info_has_no_source(tmp_path):
    import zipfile

    path = tmp_path / "head.pt"
    _export("torchscript-script", str(path))
    stripped = tmp_path / "stripped.pt"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(stripped, "w") as target:
        for info in source.infolist():
            if not info.filename.endswith(".debug_pkl"):
                target.writestr(info, source.read(info))
    (finding,) = [f for f in inspect_artifact(stripped) if f.rule == "training-dropout"]
    assert finding.location.source_file is None
    assert finding.location.source_line is None


def test_the_legacy_onnx_exporter_records_no_source(tmp_path):
    path = str(tmp_path / "legacy.onnx")
    _export("onnx-legacy", path)
    findings = [f for f in inspect_artifact(path) if f.rule == "training-dropout"]
    assert findings
    assert all(f.location.source_file is None for f in findings)

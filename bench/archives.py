"""Benchmark rows for `.pt` and `.pt2`: exportcheck's parsing readers against torch's loaders.

Both sides run in the same process on the same ResNet-50-sized archives: exportcheck's
`inspect_artifact` (parse + every graph rule) against `torch.jit.load` / `torch.export.load`
followed by a loop over every node, which is the least a loader-based inspector must do.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ArchiveRow:
    """One format: best-of-N seconds for exportcheck and for the torch loader, and the ratio."""

    format: str
    file_mib: float
    nodes: int
    exportcheck_s: float
    torch_loader_s: float

    @property
    def speedup(self) -> float:
        return self.torch_loader_s / self.exportcheck_s if self.exportcheck_s else float("inf")


def resnet50():
    """torchvision's ResNet-50 layout (bottlenecks 3-4-6-3, 25.6M parameters), defined here so
    the benchmark needs no torchvision."""
    import torch
    from torch import nn

    class Bottleneck(nn.Module):
        def __init__(self, inplanes: int, planes: int, stride: int) -> None:
            super().__init__()
            width, out = planes, planes * 4
            self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3 = nn.Conv2d(width, out, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(out)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = None
            if stride != 1 or inplanes != out:
                self.downsample = nn.Sequential(
                    nn.Conv2d(inplanes, out, 1, stride, bias=False), nn.BatchNorm2d(out)
                )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            identity = x if self.downsample is None else self.downsample(x)
            y = self.relu(self.bn1(self.conv1(x)))
            y = self.relu(self.bn2(self.conv2(y)))
            return self.relu(self.bn3(self.conv3(y)) + identity)

    layers: list[nn.Module] = [
        nn.Conv2d(3, 64, 7, 2, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1),
    ]
    inplanes = 64
    for planes, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for index in range(blocks):
            layers.append(Bottleneck(inplanes, planes, stride if index == 0 else 1))
            inplanes = planes * 4
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(2048, 1000)]
    return nn.Sequential(*layers).eval(), (torch.randn(1, 3, 224, 224),)


def _best(function: Callable[[], int], repeats: int) -> tuple[float, int]:
    best, result = float("inf"), 0
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def archive_rows(repeats: int = 10, folder: str | None = None) -> list[ArchiveRow]:
    """Saves a scripted and an exported ResNet-50 and times both ways of inspecting each."""
    import torch
    from probes import torch_loader_loop

    from exportcheck.graph_checks import inspect_artifact
    from exportcheck.readers import read_artifact

    model, inputs = resnet50()
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        script_path = os.path.join(tmp, "resnet50.pt")
        program_path = os.path.join(tmp, "resnet50.pt2")
        torch.jit.script(model).save(script_path)
        torch.export.save(torch.export.export(model, inputs), program_path)

        rows = []
        for fmt, path in (("torchscript .pt", script_path), ("torch.export .pt2", program_path)):
            ours, _ = _best(lambda path=path: len(inspect_artifact(path)) + 1, repeats)
            theirs, _ = _best(lambda path=path: torch_loader_loop(path), repeats)
            nodes = read_artifact(path, frozenset()).node_count
            rows.append(ArchiveRow(fmt, os.path.getsize(path) / (1 << 20), nodes, ours, theirs))
    return rows


if __name__ == "__main__":  # pragma: no cover - a manual run prints the rows
    for row in archive_rows():
        print(  # noqa: T201
            f"{row.format}: {row.file_mib:.1f} MiB, {row.nodes} nodes, exportcheck "
            f"{row.exportcheck_s * 1000:.1f} ms, torch loader + node loop "
            f"{row.torch_loader_s * 1000:.1f} ms, {row.speedup:.1f}x"
        )

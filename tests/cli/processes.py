"""Helpers for tests that run the real `exportcheck` process: tiny targets and a runner."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

# Small and fast: one exporter, no probes, the CPU only (unless a test asks otherwise).
FAST = ("--formats", "onnx-legacy", "--no-probes", "--device", "cpu")

TINY_MODEL = """
import torch
from torch import nn


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)
"""


def write_target(folder: Path, name: str, body: str, *, model: str = TINY_MODEL) -> Path:
    """`folder/name.py` with the tiny model and `body` (which defines build())."""
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(model) + "\n" + textwrap.dedent(body))
    return path


PLAIN_BUILD = """
def build():
    torch.manual_seed(0)
    return Tiny().eval(), (torch.randn(2, 4),)
"""


def ci_environment() -> dict[str, str]:
    """This process's environment as a CI step has it: pytest-xdist's workers set COLUMNS and
    LINES, which a CI log has not (the text report would wrap to them)."""
    return {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}


def exportcheck(
    *args: str | os.PathLike[str],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 180,
    **kwargs,
) -> subprocess.CompletedProcess[str]:
    """Runs `python -m exportcheck ARGS` as a user would, and checks it printed no traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "exportcheck", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**ci_environment(), **(env or {})},
        timeout=timeout,
        **kwargs,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done

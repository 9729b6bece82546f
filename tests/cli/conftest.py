"""Fixtures for the process-level CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.processes import PLAIN_BUILD, write_target


@pytest.fixture
def plain_target(tmp_path: Path) -> Path:
    return write_target(tmp_path, "plain", PLAIN_BUILD)

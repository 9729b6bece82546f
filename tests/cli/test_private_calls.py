"""The CLI uses no private interpreter hooks to leave (atexit's internals)."""

from __future__ import annotations

import ast
from pathlib import Path

CLI = Path(__file__).resolve().parents[2] / "src" / "exportcheck" / "cli"


def test_cli_calls_no_private_atexit_function():
    for path in CLI.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if node.value.id == "atexit":
                    assert not node.attr.startswith("_"), f"{path.name} uses atexit.{node.attr}"

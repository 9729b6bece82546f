"""The parsing TorchScript reader: live branches only, p=0 dropout, schema table, no torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from exportcheck.graph_checks import inspect_artifact
from exportcheck.readers.torchscript import read_torchscript
from exportcheck.readers.torchscript.schemas import SCHEMAS
from exportcheck.results.findings import Severity


def rules_by_severity(path: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for finding in inspect_artifact(path):
        found.setdefault(finding.severity.name, set()).add(finding.rule)
    return found


def test_pinned_schema_table_matches_torch():
    import torch

    for op, overloads in SCHEMAS.items():
        registered = [
            tuple(a.name for a in schema.arguments if not a.kwarg_only)
            for schema in torch._C._jit_get_schemas_for_operator(op)
        ]
        for names in overloads:
            assert names in registered, (op, names, registered)


def test_scripted_drop_path_in_eval_mode_is_clean(reader_exports):
    path = reader_exports["drop_path.eval.script"]
    view = read_torchscript(path, frozenset({"aten::bernoulli_", "aten::mul"}))
    assert not [n for n in view.nodes if n.op == "aten::bernoulli_"]
    assert {f.rule for f in inspect_artifact(path)} == set()
    assert any(note.code == "dead-branch" for note in view.notes)


def test_scripted_drop_path_in_train_mode_is_a_training_dropout(reader_exports):
    findings = inspect_artifact(reader_exports["drop_path.train.script"])
    masks = [f for f in findings if f.rule == "training-dropout"]
    assert {f.location.module for f in masks} == {"1.drop_path", "2.drop_path"}
    assert all(f.location.op_type == "aten::bernoulli_" for f in masks)


@pytest.mark.parametrize("fmt", ["script", "trace", "pt2"])
def test_zero_rate_dropout_is_noop_info_only(reader_exports, fmt):
    found = rules_by_severity(reader_exports[f"zero_dropout.eval.{fmt}"])
    assert found == {Severity.INFO.name: {"noop-dropout"}}


def test_reading_torchscript_imports_no_torch(reader_exports):
    probe = (
        "import sys\n"
        "from exportcheck.graph_checks import inspect_artifact\n"
        "for path in sys.argv[1:]:\n"
        "    inspect_artifact(path)\n"
        "print('torch' in sys.modules)\n"
    )
    paths = [reader_exports["drop_path.train.script"], reader_exports["zero_dropout.eval.pt2"]]
    result = subprocess.run(
        [sys.executable, "-c", probe, *paths], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"

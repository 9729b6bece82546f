"""`exportcheck fix` on torch.export programs (.pt2) and its refusal of TorchScript."""

from __future__ import annotations

import json

import pytest
import torch

import exportcheck
from exportcheck.export.exporters import Exporter
from exportcheck.results.repair import Action
from tests.cli.processes import exportcheck as run_cli
from tests.conftest import SAMPLES
from tests.repair.models import StdConvNet, built, image


@pytest.mark.parametrize("sample", ["cnn", "transformer"])
def test_train_program_fixed_passes_comparison(sample_exports, tmp_path, sample):
    source = sample_exports[(sample, "train", "exported-program")]
    fixed = tmp_path / "fixed.pt2"
    done = run_cli(
        "fix", source, "-o", fixed, "--against", f"{SAMPLES / sample}.py:build", "-f", "json"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(done.stdout)
    assert data["proof_holds"] and data["kind"] == "exported-program"
    assert any(n["action"] == "changed" for n in data["nodes"])
    program = torch.export.load(str(fixed))
    modes = [
        node.args[5] if "batch_norm" in str(node.target) else node.args[2]
        for node in program.graph.nodes
        if node.op == "call_function"
        and ("dropout" in str(node.target) or "batch_norm" in str(node.target))
    ]
    assert modes and not any(modes)


def test_program_signature_and_names_are_kept(sample_exports, tmp_path):
    source = sample_exports[("cnn", "train", "exported-program")]
    result = exportcheck.fix(source, tmp_path / "fixed.pt2")
    assert result.proof_holds, [(s.check, s.detail) for s in result.proof]
    original, repaired = torch.export.load(source), torch.export.load(str(tmp_path / "fixed.pt2"))
    assert repaired.graph_signature.user_inputs == original.graph_signature.user_inputs
    assert repaired.graph_signature.user_outputs == original.graph_signature.user_outputs
    assert set(repaired.state_dict) == set(original.state_dict)
    kept = {n.name for n in repaired.graph.nodes}
    removed = {n.name for n in original.graph.nodes} - kept
    assert removed == {n.node for n in result.changed if n.op == "aten::add_"}


def test_stdconv_program_is_intended_and_unchanged(tmp_path):
    model, x = built(StdConvNet, training=False), image()
    source = Exporter(model, (x,)).export("exported-program", str(tmp_path / "std.pt2")).path
    result = exportcheck.fix(source, tmp_path / "fixed.pt2", against=model, example_inputs=(x,))
    intended = result.with_action(Action.INTENDED)
    assert len(intended) == 2 and not result.changed
    assert result.proof_holds, [(s.check, s.detail) for s in result.proof]


def test_torchscript_is_refused_with_the_reexport_command(sample_exports, tmp_path):
    source = sample_exports[("cnn", "train", "torchscript-trace")]
    done = run_cli("fix", source, "-o", tmp_path / "fixed.pt")
    assert done.returncode == 2
    assert "does not rewrite TorchScript" in done.stderr
    assert "torch.jit.trace(model, example_inputs)" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 or "error" in done.stderr.splitlines()[-1]
    assert not (tmp_path / "fixed.pt").exists()

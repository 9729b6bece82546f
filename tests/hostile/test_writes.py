"""Writes: no report or artifact ever lands on an input, through a planted symlink, or with
a mode the umask does not give (real `exportcheck` processes; each proof on the disk)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from tests.cli.processes import FAST, PLAIN_BUILD, exportcheck, write_target


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def onnx_with_external_data(tmp_path: Path) -> Path:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((64, 64), dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    path = tmp_path / "model.onnx"
    onnx.save(model, path, save_as_external_data=True, location="weights.bin", size_threshold=0)
    return path


def test_output_onto_the_model_is_refused(onnx_with_external_data):
    before = digest(onnx_with_external_data)
    done = exportcheck("inspect", onnx_with_external_data, "-o", onnx_with_external_data)
    assert done.returncode == 2
    assert "is an input of this run" in done.stderr and done.stdout == ""
    assert digest(onnx_with_external_data) == before


def test_output_onto_the_external_data_is_refused(onnx_with_external_data):
    side = onnx_with_external_data.parent / "weights.bin"
    before = digest(side)
    done = exportcheck("inspect", onnx_with_external_data, "-o", f"json={side}")
    assert done.returncode == 2 and "weights.bin" in done.stderr
    assert digest(side) == before


def test_output_onto_external_data_named_inside_a_subgraph_is_refused(tmp_path):
    """A Constant's tensor in an If branch names its own side file: it is an input too."""
    import numpy as np
    import onnx
    from onnx import TensorProto, external_data_helper, helper, numpy_helper

    value = numpy_helper.from_array(np.ones((64, 64), dtype=np.float32), "c")
    external_data_helper.set_external_data(value, location="branch.bin")
    (tmp_path / "branch.bin").write_bytes(np.ones((64, 64), dtype=np.float32).tobytes())
    value.ClearField("raw_data")
    branch = helper.make_graph(
        [helper.make_node("Constant", [], ["k"], value=value, name="k")],
        "then",
        [],
        [helper.make_tensor_value_info("k", TensorProto.FLOAT, [64, 64])],
    )
    graph = helper.make_graph(
        [helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=branch)],
        "g",
        [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 64])],
    )
    path = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    side = tmp_path / "branch.bin"
    before = digest(side)
    done = exportcheck("inspect", path, "-o", f"json={side}")
    assert done.returncode == 2 and "branch.bin" in done.stderr, done.stderr
    assert digest(side) == before


def test_output_onto_a_hard_link_of_the_model_is_refused(onnx_with_external_data, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    link = other / "report.txt"
    os.link(onnx_with_external_data, link)
    before = digest(onnx_with_external_data)
    done = exportcheck("inspect", onnx_with_external_data, "-o", link)
    assert done.returncode == 2 and "is an input of this run" in done.stderr
    assert digest(onnx_with_external_data) == before


def test_output_through_a_symlink_to_the_model_is_refused(onnx_with_external_data, tmp_path):
    link = tmp_path / "report.json"
    link.symlink_to(onnx_with_external_data)
    before = digest(onnx_with_external_data)
    done = exportcheck("inspect", onnx_with_external_data, "-o", link)
    assert done.returncode == 2
    assert digest(onnx_with_external_data) == before


@pytest.mark.parametrize("which", ["target", "inputs", "config"])
def test_output_onto_the_target_inputs_or_config_is_refused(tmp_path, which):
    import torch

    target = write_target(tmp_path, "model", PLAIN_BUILD)
    inputs = tmp_path / "inputs.pt"
    torch.save({"x": torch.randn(2, 4)}, inputs)
    config = tmp_path / "exportcheck.toml"
    config.write_text('fail-on = "error"\n')
    victim = {"target": target, "inputs": inputs, "config": config}[which]
    before = digest(victim)
    done = exportcheck(
        "validate",
        target,
        *FAST,
        "--inputs",
        inputs,
        "--config",
        config,
        "-o",
        victim,
        "--quiet",
    )
    assert done.returncode == 2, done.stderr
    assert "is an input of this run" in done.stderr
    assert digest(victim) == before
    # Refused before any work: no progress, no export, no report.
    assert done.stderr.count("\n") == 1


def test_out_dir_onto_the_target_is_refused(tmp_path):
    target = write_target(tmp_path, "model", PLAIN_BUILD)
    before = digest(target)
    done = exportcheck("validate", target, *FAST, "--out-dir", target)
    assert done.returncode == 2 and "--out-dir" in done.stderr
    assert digest(target) == before


def test_artifacts_never_write_through_a_planted_symlink(tmp_path):
    from exportcheck.pipeline.validation import planned_artifacts

    target = write_target(tmp_path, "model", PLAIN_BUILD)
    out = tmp_path / "artifacts"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    [planned] = planned_artifacts(str(out), [str(target)], ["onnx-legacy"])
    Path(planned).symlink_to(victim)
    done = exportcheck("validate", target, *FAST, "--out-dir", out, "--quiet")
    assert done.returncode == 0, done.stderr
    assert victim.read_text() == "precious"
    artifact = Path(planned)
    assert not artifact.is_symlink() and artifact.stat().st_size > 0
    assert sorted(p.name for p in out.iterdir()) == [artifact.name]  # no private folder left


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_report_files_honour_the_umask(onnx_with_external_data, tmp_path, umask, mode):
    report = tmp_path / "reports" / "report.json"
    script = (
        f"import os, sys, runpy; os.umask({umask}); "
        "sys.argv = ['exportcheck'] + sys.argv[1:]; runpy.run_module('exportcheck', run_name='__main__')"
    )
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", script, "inspect", str(onnx_with_external_data), "-o", str(report)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(report.stat().st_mode) == mode


def test_an_input_at_an_artifacts_planned_name_is_refused(tmp_path):
    from exportcheck.pipeline.validation import planned_artifacts

    target = write_target(tmp_path, "model", PLAIN_BUILD)
    [planned] = planned_artifacts(str(tmp_path), [str(target)], ["onnx-legacy"])
    config = Path(planned)
    config.write_text('fail-on = "error"\n')  # the config happens to sit at the artifact's name
    before = digest(config)
    done = exportcheck(
        "validate", target, *FAST, "--config", config, "--out-dir", tmp_path, "--quiet"
    )
    assert done.returncode == 2 and "--out-dir" in done.stderr
    assert digest(config) == before

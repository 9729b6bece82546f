"""A target runs as `python file.py` would run it, and the run leaves the user's tree, terminal
and numbers as they were: siblings importable, no bytecode written, no runtime log on stderr,
absurd numbers refused in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from tests.cli.processes import (
    FAST,
    PLAIN_BUILD,
    TINY_MODEL,
    ci_environment,
    exportcheck,
    write_target,
)


def _bytecode(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name == "__pycache__" or p.suffix == ".pyc"]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


SIBLING_IN_BUILD = """
import torch


def build():
    import helper  # a sibling module, imported when build() runs

    return helper.make(), (torch.randn(2, 4),)
"""

SIBLING_AT_IMPORT = """
import torch
from helper import make


def build():
    return make(), (torch.randn(2, 4),)
"""

HELPER = (
    TINY_MODEL
    + """

def make():
    torch.manual_seed(0)
    return Tiny().eval()
"""
)


@pytest.mark.parametrize("body", [SIBLING_IN_BUILD, SIBLING_AT_IMPORT], ids=["build", "import"])
def test_a_file_target_imports_its_siblings_and_writes_no_bytecode(tmp_path, body):
    project = tmp_path / "models"
    _write(project / "helper.py", HELPER)
    target = _write(project / "net.py", body)
    done = exportcheck("validate", f"{target}:build", *FAST, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert _bytecode(tmp_path) == []


def test_a_package_target_writes_no_bytecode_into_the_package(tmp_path):
    _write(tmp_path / "zoo" / "__init__.py", "")
    _write(tmp_path / "zoo" / "layers.py", HELPER)
    _write(
        tmp_path / "zoo" / "nets.py",
        """
        import torch


        def build():
            from zoo.layers import make

            return make(), (torch.randn(2, 4),)
        """,
    )
    done = exportcheck("validate", "zoo.nets:build", *FAST, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert _bytecode(tmp_path) == []


def _onnx_for_tiny(path: Path, nodes: list, initializers: list) -> Path:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=initializers,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _short_initializer(path: Path) -> Path:
    """Fails when ONNX Runtime builds the session: 8 bytes for a tensor of 4 floats."""
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4], raw_data=b"\0" * 8)
    return _onnx_for_tiny(path, [helper.make_node("Add", ["x", "w"], ["y"])], [w])


def _bad_reshape(path: Path) -> Path:
    """Fails when ONNX Runtime runs it: 8 values into a shape of 3."""
    shape = helper.make_tensor("shape", TensorProto.INT64, [1], [3])
    return _onnx_for_tiny(path, [helper.make_node("Reshape", ["x", "shape"], ["y"])], [shape])


@pytest.mark.parametrize(
    ("make", "cause"),
    [(_short_initializer, "buffer size mismatch"), (_bad_reshape, "cannot be reshaped")],
    ids=["session", "run"],
)
def test_onnxruntime_logs_nothing_and_its_cause_reaches_the_report(tmp_path, make, cause):
    artifact = make(tmp_path / "broken.onnx")
    target = write_target(tmp_path, "tiny", PLAIN_BUILD)
    done = exportcheck(
        "compare", artifact, "--against", f"{target}:build", "--device", "cpu", "-q", cwd=tmp_path
    )
    assert done.returncode in (1, 2), done.stderr
    assert "\x1b" not in done.stderr and "onnxruntime:" not in done.stderr, done.stderr
    assert "onnxruntime_src" not in done.stdout + done.stderr
    assert cause in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--timeout", "1e308"], "--timeout"),
        (["--timeout", "inf"], "--timeout"),
        (["--jobs", str(10**30)], "--jobs"),
        (["--rtol", "1e308"], "--rtol"),
        (["--atol", "nan"], "--atol"),
        (["--shard", f"1/{'9' * 5000}"], "--shard"),
        (["--input-shape", f"2x{'4' * 5000}"], "--input-shape"),
    ],
    ids=["timeout-huge", "timeout-inf", "jobs", "rtol", "atol-nan", "shard", "input-shape"],
)
def test_absurd_numbers_in_flags_are_input_errors(tmp_path, flags, named):
    target = write_target(tmp_path, "tiny", PLAIN_BUILD)
    done = exportcheck("validate", f"{target}:build", *FAST, *flags, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("exportcheck: error:") and named in line, line
    assert len(line) < 400


@pytest.mark.parametrize(
    "setting",
    [
        "timeout = 1e308",
        f"jobs = {10**30}",
        "rtol = 1e308",
        "[tool.exportcheck.output-tolerances]\nlogits = { atol = 1e300 }",
    ],
    ids=["timeout", "jobs", "rtol", "output-tolerance"],
)
def test_absurd_numbers_in_the_config_are_input_errors(tmp_path, setting):
    target = write_target(tmp_path, "tiny", PLAIN_BUILD)
    (tmp_path / "pyproject.toml").write_text(f"[tool.exportcheck]\n{setting}\n")
    done = exportcheck("validate", f"{target}:build", *FAST, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "pyproject.toml" in line, line


def test_an_absurd_terminal_width_is_ignored(tmp_path, sample_exports):
    done = exportcheck(
        "inspect", sample_exports[("cnn", "eval", "onnx")], env={"COLUMNS": "9" * 5000}
    )
    assert done.returncode == 0, done.stderr
    assert os.linesep in done.stdout


def test_validate_on_every_runtime_writes_nothing_under_the_users_home(tmp_path):
    """ONNX Runtime 1.32's import writes a device id and an event store under
    ~/.cache/Microsoft/DeveloperTools and starts a telemetry client; OpenVINO's writes under
    ~/intel and sends an event. A validate on every installed runtime leaves the home as it was."""
    home = tmp_path / "home"
    home.mkdir()
    target = write_target(tmp_path, "tiny", PLAIN_BUILD)
    quiet = ("ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME", "CI")
    env = {k: v for k, v in ci_environment().items() if k not in quiet}
    done = subprocess.run(
        [sys.executable, "-m", "exportcheck", "validate", f"{target}:build", *FAST],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**env, "HOME": str(home)},
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "onnxruntime" in done.stdout
    assert [p.relative_to(home) for p in home.rglob("*")] == []

"""The report stream and CI ergonomics: full or closed stdout, progress lines, -o formats,
errors before any work, and package targets from the current directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.processes import FAST, PLAIN_BUILD, TINY_MODEL, exportcheck, write_target


@pytest.mark.parametrize("command", [["rules"], ["explain", "training-dropout"], ["--help"]])
def test_a_full_stdout_is_a_one_line_error(command):
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "exportcheck", *command],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "No space left on device" in done.stderr
    assert done.stderr.startswith("exportcheck: error: ")


def test_a_closed_stdout_pipe_is_a_one_line_error(tmp_path):
    reader = subprocess.Popen(
        [sys.executable, "-m", "exportcheck", "rules"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    reader.stdout.close()  # the reading end goes away before anything is written
    stderr = reader.stderr.read()
    reader.wait(timeout=60)
    assert reader.returncode == 2
    assert stderr.count("\n") == 1 and "Broken pipe" in stderr


def test_progress_lines_on_stderr_without_a_tty_and_quiet_silences_them(plain_target):
    done = exportcheck("validate", plain_target, *FAST, "--format", "json")
    lines = done.stderr.splitlines()
    assert done.returncode == 0, done.stderr
    steps = [line for line in lines if line.startswith("exportcheck: ")]
    assert len(steps) >= 3 and any("export onnx-legacy" in line for line in steps)
    elapsed = [float(line.split()[1]) for line in steps]
    assert elapsed == sorted(elapsed)
    assert all(line.split()[2] == "s" for line in steps)
    quiet = exportcheck("validate", plain_target, *FAST, "--format", "json", "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert json.loads(quiet.stdout)["subjects"] == [str(plain_target)]


@pytest.mark.parametrize(
    ("name", "check"),
    [
        ("r.json", lambda text: json.loads(text)["tool"] == "exportcheck"),
        ("r.sarif", lambda text: json.loads(text)["version"] == "2.1.0"),
        ("r.xml", lambda text: text.startswith("<?xml") and "<testsuites" in text),
        ("r.md", lambda text: text.lstrip().startswith("#") or "|" in text),
    ],
)
def test_output_format_is_inferred_from_the_suffix(tmp_path, name, check):
    from typer.testing import CliRunner

    from exportcheck.cli.main import app

    model = tmp_path / "m.onnx"
    _tiny_onnx(model)
    report = tmp_path / "reports" / name
    result = CliRunner().invoke(app, ["inspect", str(model), "-o", str(report)])
    assert result.exit_code == 0, result.output
    assert check(report.read_text())


def _tiny_onnx(path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")],
        "g",
        [value("x", TensorProto.FLOAT, [2])],
        [value("y", TensorProto.FLOAT, [2])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("xml=r.xml", "unknown format 'xml'"),
        ("sarif=", "names no file"),
    ],
)
def test_bad_output_specs_fail_before_any_work(plain_target, output, message):
    done = exportcheck("validate", plain_target, *FAST, "-o", output)
    assert done.returncode == 2 and message in done.stderr
    # Before any work: one error line and no progress line at all.
    assert done.stderr.count("\n") == 1 and "build" not in done.stderr


def test_an_unwritable_report_folder_fails_before_any_work(tmp_path, plain_target):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() == "0":
        blocker = tmp_path / "blocker"  # root writes anywhere: block with a file instead
        blocker.write_text("")
        destination = blocker / "r.xml"
        message = "cannot create the report folder"
    else:
        destination = locked / "r.xml"
        message = "cannot write into"
    done = exportcheck("validate", plain_target, *FAST, "-o", destination)
    assert done.returncode == 2 and message in done.stderr
    assert done.stderr.count("\n") == 1


def test_a_package_target_imports_from_the_current_directory(tmp_path):
    package = tmp_path / "zoo"
    package.mkdir()
    (package / "__init__.py").write_text("")
    write_target(package, "tiny", PLAIN_BUILD, model=TINY_MODEL)
    done = exportcheck("validate", "zoo.tiny:build", *FAST, "--format", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["subjects"] == ["zoo.tiny:build"]

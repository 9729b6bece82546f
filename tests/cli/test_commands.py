"""The CLI through Typer's runner: every command, exit code and output format."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exportcheck.cli.main import app
from exportcheck.reporters import REPORTERS

runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output
    return result


def test_inspect_train_export_exits_1_and_names_modules(sample_exports):
    result = invoke("inspect", sample_exports[("cnn", "train", "onnx-legacy")])
    assert result.exit_code == 1
    assert "training-batchnorm" in result.stdout and "features.1" in result.stdout


def test_inspect_clean_eval_export_exits_0(sample_exports):
    result = invoke(
        "inspect",
        sample_exports[("cnn", "eval", "onnx")],
        sample_exports[("cnn", "eval", "exported-program")],
    )
    assert result.exit_code == 0, result.output


def test_inspect_directory_recurses(sample_exports, tmp_path):
    placed = {
        tmp_path / "top.onnx": ("cnn", "train", "onnx"),
        tmp_path / "a" / "b" / "deep.pt": ("cnn", "eval", "torchscript-trace"),
        tmp_path / "c" / "program.pt2": ("cnn", "eval", "exported-program"),
    }
    for target, key in placed.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sample_exports[key], target)
    (tmp_path / "a" / "notes.txt").write_text("not a model")
    result = invoke("inspect", str(tmp_path), "--format", "json")
    report = json.loads(result.stdout)
    assert sorted(report["subjects"]) == sorted(str(p) for p in placed)


def test_json_shape_is_the_documented_contract(sample_exports):
    result = invoke("inspect", sample_exports[("cnn", "train", "onnx")], "--format", "json")
    report = json.loads(result.stdout)
    assert {
        "findings",
        "summary",
        "exit_code",
        "version",
        "comparisons",
        "skipped",
        "errors",
    } <= set(report)
    finding = report["findings"][0]
    assert set(finding) >= {"rule", "code", "severity", "message", "subject", "location"}
    assert set(finding["location"]) == {
        "artifact",
        "scope",
        "node",
        "op_type",
        "module",
        "module_type",
        "runtime",
        "output",
        "source_file",
        "source_line",
    }
    assert set(report["summary"]) >= {"error", "warning", "info"}
    assert report["exit_code"] == 1 == result.exit_code


@pytest.mark.parametrize(
    ("fail_on", "code"), [("error", 0), ("warning", 1), ("info", 1), ("never", 0)]
)
def test_fail_on_threshold(tmp_path, fail_on, code):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("RandomNormal", [], ["y"], shape=[2], name="noise")],
        "g",
        [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    path = tmp_path / "random.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    result = invoke("inspect", str(path), "--fail-on", fail_on)
    assert result.exit_code == code


def test_bad_inputs_exit_2_with_one_line(tmp_path):
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(bytes(range(256)) * 7)
    for path in (empty, garbage, tmp_path / "missing.onnx"):
        result = invoke("inspect", str(path))
        assert result.exit_code == 2
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert (
            len(lines) == 1
            and lines[0].startswith("exportcheck: error: ")
            and str(path) in lines[0]
        )


def test_good_files_are_still_inspected_beside_a_bad_one(tmp_path, sample_exports):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    result = invoke(
        "inspect", str(bad), sample_exports[("cnn", "train", "onnx")], "--format", "json"
    )
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert any(f["rule"] == "training-dropout" for f in report["findings"])
    assert report["errors"][0]["subject"] == str(bad)


def test_output_file_and_several_formats(tmp_path, sample_exports):
    path = sample_exports[("cnn", "train", "onnx")]
    out = tmp_path / "report.json"
    junit = tmp_path / "report.xml"
    result = invoke(
        "inspect", path, "--format", "json", "--output", str(out), "--output", f"junit={junit}"
    )
    assert result.exit_code == 1
    assert json.loads(out.read_text())["findings"]
    assert junit.read_text().startswith("<?xml")
    assert result.stdout == ""


def test_output_into_missing_folder_creates_it(tmp_path, sample_exports):
    report = tmp_path / "no" / "such" / "r.txt"
    result = invoke("inspect", sample_exports[("cnn", "eval", "onnx")], "--output", str(report))
    assert result.exit_code == 0, result.output
    assert "eval mode" in report.read_text() or report.read_text()


def test_output_folder_that_cannot_be_made_is_an_input_error(tmp_path, sample_exports):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = invoke(
        "inspect", sample_exports[("cnn", "eval", "onnx")], "--output", str(blocker / "r.txt")
    )
    assert result.exit_code == 2
    assert "cannot create the report folder" in result.stderr


@pytest.mark.parametrize("fmt", sorted(REPORTERS))
def test_every_format_choice_renders(sample_exports, fmt):
    result = invoke("inspect", sample_exports[("cnn", "train", "onnx")], "--format", fmt)
    assert result.exit_code == 1 and result.stdout.strip()


def test_unknown_format_is_a_usage_error(sample_exports):
    result = invoke("inspect", sample_exports[("cnn", "eval", "onnx")], "--format", "yaml")
    assert result.exit_code == 2


def test_rules_and_explain():
    listing = invoke("rules")
    assert listing.exit_code == 0 and "training-dropout" in listing.stdout
    rows = json.loads(invoke("rules", "--format", "json").stdout)
    assert {"slug", "code", "severity", "summary"} <= set(rows[0])
    explained = invoke("explain", "training-batchnorm")
    assert explained.exit_code == 0
    for section in ("What it finds", "Why it is wrong", "How to fix"):
        assert section in explained.stdout
    assert invoke("explain", "EC101").exit_code == 0
    missing = invoke("explain", "nope")
    assert missing.exit_code == 2 and "unknown rule" in missing.stderr


def test_version():
    from exportcheck import __version__

    result = invoke("--version")
    assert result.exit_code == 0 and __version__ in result.stdout


def test_validate_known_bad_model_exits_1(tmp_path):
    from tests.conftest import SAMPLES

    result = invoke(
        "validate",
        f"{SAMPLES / 'bad_functional_dropout.py'}:build",
        "--device",
        "cpu",
        "--formats",
        "onnx-legacy",
        "--format",
        "json",
    )
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert {"nondeterministic-eval", "training-dropout"} <= {f["rule"] for f in report["findings"]}
    assert report["comparisons"]


def test_validate_clean_model_exits_0_and_keeps_artifacts(tmp_path):
    from tests.conftest import SAMPLES

    out = tmp_path / "artifacts"
    result = invoke(
        "validate",
        str(SAMPLES / "custom_mode_layer.py"),
        "--device",
        "cpu",
        "--formats",
        "onnx-legacy,torchscript-trace",
        "--out-dir",
        str(out),
    )
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert [n.split("-")[0] for n in names] == ["custom_mode_layer", "custom_mode_layer"]
    assert names[0].endswith(".legacy.onnx") and names[1].endswith(".trace.pt")


def test_validate_target_errors_exit_2(tmp_path):
    script = tmp_path / "model.py"
    script.write_text("def build():\n    raise RuntimeError('boom')\n")
    for target, cause in (
        (f"{script}:build", "build() raised RuntimeError: boom"),
        (f"{script}:nothing", "has no attribute 'nothing'"),
        (f"{tmp_path / 'absent.py'}:build", "does not exist"),
        ("no_such_package_xyz:build", "not found"),
    ):
        result = invoke("validate", target, "--device", "cpu")
        assert result.exit_code == 2, target
        assert cause in result.stderr


def test_audit_command_reports_left_training_children():
    from tests.conftest import SAMPLES

    result = invoke("audit", str(SAMPLES / "bad_train_override.py"), "--format", "json")
    assert result.exit_code == 1
    rules = {(f["rule"], f["location"]["module"]) for f in json.loads(result.stdout)["findings"]}
    assert ("submodule-left-training", "body.norm") in rules
    assert ("batch-dependent-eval", "body.norm") in rules


def test_compare_train_mode_export_is_attributed(tmp_path, sample_exports):
    from tests.conftest import SAMPLES

    artifact = sample_exports[("cnn", "train", "torchscript-trace")]
    # Dropout off, BatchNorm on batch statistics: what a train-mode BatchNorm export computes.
    import torch

    from tests.conftest import build_sample

    model, inputs = build_sample("cnn")
    model.train()
    model.dropout.eval()
    torch.jit.trace(model, inputs, check_trace=False).save(str(tmp_path / "bn-train.pt"))
    result = invoke(
        "compare",
        str(tmp_path / "bn-train.pt"),
        "--against",
        f"{SAMPLES / 'cnn.py'}:build",
        "--device",
        "cpu",
        "--format",
        "json",
    )
    assert result.exit_code == 1
    mismatch = [f for f in json.loads(result.stdout)["findings"] if f["rule"] == "output-mismatch"]
    assert mismatch and "training mode" in mismatch[0]["message"]
    assert artifact


def _training_dropout_onnx(folder: Path) -> Path:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("Dropout", ["x", "", "train"], ["y"], name="drop")],
        "g",
        [value("x", TensorProto.FLOAT, [2])],
        [value("y", TensorProto.FLOAT, [2])],
        initializer=[numpy_helper.from_array(np.array(True), "train")],
    )
    path = folder / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    return path


@pytest.mark.parametrize(("missing", "code"), [(False, 1), (True, 2)])
def test_console_script_exit_keeps_output_exit_handlers_and_code(
    tmp_path: Path, missing: bool, code: int
) -> None:
    """main() leaves without interpreter teardown: the report must still be complete, exit
    handlers must still run, and the exit code must be the command's."""
    import subprocess
    import sys

    path = tmp_path / "absent.onnx" if missing else _training_dropout_onnx(tmp_path)
    script = (
        "import atexit, sys\n"
        "atexit.register(lambda: sys.stderr.write('exit handler ran\\n'))\n"
        "sys.argv = ['exportcheck', 'inspect', sys.argv[1], '--format', 'json']\n"
        "from exportcheck.cli.main import main\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == code, done.stderr
    report = json.loads(done.stdout)
    assert report["exit_code"] == code
    assert [f["rule"] for f in report["findings"]] == ([] if missing else ["training-dropout"])
    assert done.stderr.endswith("exit handler ran\n")

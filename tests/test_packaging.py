"""What users install is what is tested: the wheel holds the whole source tree, the light install
inspects every artifact kind without torch, and the pre-commit hook judges only artifacts.

`scripts/dev.sh test` builds the sdist and the wheel into `EXPORTCHECK_DIST`, installs the wheel
(never editable) into the suite's environment and into `EXPORTCHECK_LIGHT_PYTHON`'s, a venv with
no extra."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import exportcheck

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "src" / "exportcheck"


def _source_files() -> set[str]:
    return {
        p.relative_to(SOURCE.parent).as_posix()
        for p in SOURCE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def _dist(pattern: str) -> Path:
    folder = os.environ.get("EXPORTCHECK_DIST")
    if not folder:
        pytest.skip("EXPORTCHECK_DIST is not set: `sh scripts/dev.sh test` builds the dists")
    [found] = sorted((ROOT / folder).glob(pattern))
    return found


def test_suite_runs_against_the_installed_package_not_the_source_tree():
    imported = Path(exportcheck.__file__).resolve()
    assert SOURCE not in imported.parents, f"exportcheck imported from the source: {imported}"
    assert importlib.metadata.version("exportcheck") == exportcheck.__version__


def test_installed_package_holds_every_module_and_the_schema():
    installed = {
        f.as_posix()
        for f in importlib.metadata.files("exportcheck") or ()
        if f.parts[0] == "exportcheck" and "__pycache__" not in f.parts
    }
    missing = _source_files() - installed
    assert not missing, f"the installed package lacks {sorted(missing)}"
    assert "exportcheck/schemas/report.schema.json" in installed
    assert "exportcheck/readers/torchscript/interpreter.py" in installed


def test_wheel_and_sdist_hold_the_source_tree_and_the_licence():
    with zipfile.ZipFile(_dist("exportcheck-*.whl")) as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
    assert _source_files() <= names, sorted(_source_files() - names)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert b"License-Expression: Apache-2.0" in metadata
    assert b"Provides-Extra: validate" in metadata
    with tarfile.open(_dist("exportcheck-*.tar.gz")) as sdist:
        members = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    expected = {f"src/{name}" for name in _source_files()} | {"LICENSE", "pyproject.toml"}
    assert expected <= members, sorted(expected - members)


def _run(python: str | os.PathLike[str], *args: str | os.PathLike[str], cwd: Path | None = None):
    done = subprocess.run(
        [os.fspath(python), "-m", "exportcheck", *map(os.fspath, args)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


@pytest.fixture(scope="module")
def light_python() -> Path:
    python = os.environ.get("EXPORTCHECK_LIGHT_PYTHON")
    if not python:
        pytest.skip("EXPORTCHECK_LIGHT_PYTHON is not set: `sh scripts/dev.sh test` builds it")
    return ROOT / python


def test_light_install_holds_no_torch_onnxruntime_or_onnxscript(light_python):
    probe = (
        "import importlib.util, json\n"
        "print(json.dumps({m: importlib.util.find_spec(m) is not None for m in "
        "('torch', 'onnxruntime', 'onnxscript', 'onnx', 'typer')}))"
    )
    done = subprocess.run([light_python, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == {
        "torch": False,
        "onnxruntime": False,
        "onnxscript": False,
        "onnx": True,
        "typer": True,
    }


@pytest.mark.parametrize("fmt", ["onnx", "onnx-legacy", "torchscript-trace", "exported-program"])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_light_install_inspects_like_the_full_one(light_python, sample_exports, fmt, mode):
    artifact = sample_exports[("cnn", mode, fmt)]
    light = _run(light_python, "inspect", artifact, "-f", "json")
    full = _run(sys.executable, "inspect", artifact, "-f", "json")
    assert light.returncode == full.returncode == (1 if mode == "train" else 0), light.stderr

    def rules(done):
        return sorted(f["rule"] for f in json.loads(done.stdout)["findings"])

    assert rules(light) == rules(full)


@pytest.mark.parametrize("fmt", ["text", "json", "junit", "sarif", "markdown"])
def test_light_install_renders_every_report_format(light_python, sample_exports, fmt):
    done = _run(light_python, "inspect", sample_exports[("cnn", "train", "onnx")], "-f", fmt)
    assert done.returncode == 1 and done.stdout.strip(), done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["rules"],
        ["explain", "training-dropout"],
        ["config"],
        ["--version"],
    ],
)
def test_light_install_runs_the_static_commands(light_python, args, tmp_path):
    done = _run(light_python, *args, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout, done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "sample_models/cnn.py:build"],
        ["audit", "sample_models/cnn.py:build"],
        ["compare", "model.onnx", "--against", "sample_models/cnn.py:build"],
    ],
)
def test_light_install_names_the_extra_for_commands_that_run_models(light_python, args):
    done = _run(light_python, *args, cwd=ROOT)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"exportcheck: error: exportcheck {args[0]} needs torch")
    assert "pip install 'exportcheck[validate]'" in line
    assert done.stdout == ""


def test_light_install_api_names_the_extra(light_python):
    probe = (
        "import exportcheck\n"
        "from exportcheck.errors import MissingExtraError\n"
        "try:\n"
        "    exportcheck.validate\n"
        "except MissingExtraError as error:\n"
        "    print(error.exit_code, error)\n"
    )
    done = subprocess.run([light_python, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("2 exportcheck.validate needs torch"), done.stdout


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.mark.slow
def test_pre_commit_hook_fails_only_the_train_mode_artifact(tmp_path, sample_exports):
    """Through pre-commit itself: it installs this repository's hook (the light package) into
    a temporary environment of its own and runs it on a scratch repository's files."""
    if not (ROOT / ".git").exists():
        pytest.skip(f"{ROOT} is not a git checkout: pre-commit try-repo needs one")
    repo = tmp_path / "scratch"
    (repo / "web").mkdir(parents=True)
    shutil.copy(sample_exports[("cnn", "eval", "onnx")], repo / "clean.onnx")
    shutil.copy(sample_exports[("cnn", "train", "onnx")], repo / "train.onnx")
    (repo / "web" / "app.ts").write_text("export const answer: number = 42;\n")
    with zipfile.ZipFile(repo / "checkpoint.pt", "w") as checkpoint:  # torch.save's layout
        checkpoint.writestr("checkpoint/data.pkl", b"\x80\x02}q\x00.")
        checkpoint.writestr("checkpoint/version", "3\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    done = subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "exportcheck-inspect"]
        + ["--verbose", "--all-files"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PRE_COMMIT_COLOR": "never"},
    )
    status, output = done.returncode, done.stdout + done.stderr
    assert status == 1, output
    assert "clean.onnx: ok" in output and "train.onnx: failed" in output, output
    assert "error: EC101 training-dropout" in output, output
    assert "skipped: web/app.ts: inspect: not an export artifact" in output, output
    assert "skipped: checkpoint.pt: inspect: not an export artifact: a torch.save" in output
    assert "error: web/app.ts" not in output and "error: checkpoint.pt" not in output, output

"""The command line checks every flag before it builds anything: a flag error is exit 2, one
line, and torch is never imported; --select and --ignore; shell completion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from exportcheck.pipeline.validation import cuda_driver_missing
from tests.cli.processes import FAST, exportcheck

# Runs the command as `exportcheck` (the console script's name, which completion goes by) and,
# at exit, says whether torch was ever imported.
PROBE = (
    "import sys, atexit\n"
    "atexit.register(lambda: sys.__stderr__.write('TORCH=' + str('torch' in sys.modules)))\n"
    "sys.argv[0] = 'exportcheck'\n"
    "from exportcheck.cli.main import main\n"
    "main()\n"
)


def probed(*args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str, bool]:
    """(exit code, stderr without the probe's line, whether torch was imported)."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    stderr, _, torch_line = done.stderr.rpartition("TORCH=")
    return done.returncode, stderr, torch_line == "True"


FLAG_ERRORS = [
    (["--formats", "onnx,bogus"], "got 'bogus'"),
    (["--inputs", "missing.npz"], "missing.npz: no such file (--inputs)"),
    (["-o", "report.html"], "no report format writes '.html' files"),
    (["-q", "-v"], "--quiet and --verbose contradict each other"),
    (["--select", "bogus"], "--select: unknown rule 'bogus'"),
    (["--ignore", "EC101,nope"], "--ignore: unknown rule 'nope'"),
]


@pytest.mark.parametrize(("flags", "message"), FLAG_ERRORS, ids=[f[0] for f, _ in FLAG_ERRORS])
def test_a_flag_error_is_one_line_before_torch_is_imported(plain_target, flags, message):
    code, stderr, torch_imported = probed(
        "validate", plain_target.name, *flags, cwd=plain_target.parent
    )
    assert code == 2, stderr
    assert stderr.count("\n") == 1 and message in stderr, stderr
    assert not torch_imported
    assert not (plain_target.parent / "report.html").exists()


@pytest.mark.skipif(cuda_driver_missing() is None, reason="a GPU driver is loaded here")
@pytest.mark.parametrize("command", ["validate", "audit"])
def test_a_device_this_machine_cannot_have_is_refused_before_torch(plain_target, command):
    code, stderr, torch_imported = probed(
        command, plain_target.name, "--device", "cuda", cwd=plain_target.parent
    )
    assert code == 2 and stderr.count("\n") == 1
    assert "--device: cuda was asked for, but" in stderr
    assert not torch_imported


def test_a_format_named_before_the_file_takes_any_suffix(tmp_path, sample_exports):
    report = tmp_path / "report.html"
    done = exportcheck("inspect", sample_exports[("cnn", "eval", "onnx")], "-o", f"json={report}")
    assert done.returncode == 0, done.stderr
    assert json.loads(report.read_text())["findings"] == []


def test_a_txt_report_takes_the_format_option(tmp_path, plain_target):
    report = tmp_path / "report.txt"
    done = exportcheck("validate", plain_target, *FAST, "-f", "json", "-o", report, "-q")
    assert done.returncode == 0, done.stderr
    assert json.loads(report.read_text())["subjects"]


def rules_found(*args: str | Path) -> tuple[int, set[str]]:
    done = exportcheck("inspect", *args, "-f", "json")
    return done.returncode, {f["rule"] for f in json.loads(done.stdout)["findings"]}


def test_select_keeps_only_the_rules_named(sample_exports):
    path = sample_exports[("cnn", "train", "onnx")]
    assert rules_found(path) == (1, {"training-dropout"})
    assert rules_found(path, "--select", "EC101") == (1, {"training-dropout"})
    assert rules_found(path, "--select", "training-batchnorm,output-mismatch") == (0, set())


def test_ignore_leaves_out_the_rules_named_comma_separated_or_repeated(sample_exports):
    path = sample_exports[("cnn", "train", "onnx")]
    assert rules_found(path, "--ignore", "training-dropout") == (0, set())
    assert rules_found(path, "--ignore", "EC201", "--ignore", "EC101") == (0, set())
    assert rules_found(path, "--ignore", "training-batchnorm") == (1, {"training-dropout"})


def completions(words: str, tmp_path: Path) -> list[str]:
    """What bash completion offers for the last of `words`, through Typer's completion hook."""
    env = {
        "_EXPORTCHECK_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - 1),
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, **env},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_shell_completion_completes_commands_and_options(tmp_path):
    assert completions("exportcheck in", tmp_path) == ["inspect"]
    assert completions("exportcheck validate m.py --sel", tmp_path) == ["--select"]


def test_help_offers_completion():
    done = exportcheck("--help")
    assert "--install-completion" in done.stdout and "--show-completion" in done.stdout

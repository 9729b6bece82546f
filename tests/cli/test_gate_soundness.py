"""Whatever the target does, exportcheck never exits 0 without a complete report, and the
user's stdout never mixes into the report stream (real `exportcheck` processes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.processes import FAST, PLAIN_BUILD, exportcheck, write_target


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--rtol", "nan", "--rtol must be a finite number >= 0"),
        ("--atol", "inf", "--atol must be a finite number >= 0"),
        ("--rtol", "-1e-3", "--rtol must be a finite number >= 0"),
        ("--timeout", "nan", "--timeout must be a finite number of seconds > 0"),
        ("--timeout", "0", "--timeout must be a finite number of seconds > 0"),
    ],
)
def test_non_finite_or_negative_numbers_are_input_errors(plain_target, flag, value, message):
    done = exportcheck("validate", plain_target, *FAST, flag, value)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.splitlines()) == 1
    assert done.stdout == ""


def test_nan_tolerance_in_the_config_is_an_input_error(tmp_path, plain_target):
    config = tmp_path / "exportcheck.toml"
    config.write_text("rtol = nan\n")
    done = exportcheck("validate", plain_target, *FAST, "--config", config)
    assert done.returncode == 2 and "rtol must be a finite number >= 0" in done.stderr


@pytest.mark.parametrize(
    ("body", "cause"),
    [
        ("def build():\n    import sys\n    sys.exit(0)\n", "build() called sys.exit(0)"),
        (
            "def build():\n    import os\n    os._exit(0)\n",
            "os._exit(0) was called while exportcheck was running",
        ),
        ("import sys\nsys.exit(0)\ndef build():\n    pass\n", "called sys.exit(0)"),
    ],
    ids=["sys-exit", "os-exit", "exit-on-import"],
)
def test_a_target_that_exits_gets_exit_2_and_a_complete_report(tmp_path, body, cause):
    target = write_target(tmp_path, "leaver", body)
    done = exportcheck("validate", target, *FAST, "--format", "json")
    assert done.returncode == 2, done.stderr
    report = json.loads(done.stdout)
    assert report["exit_code"] == 2
    assert cause in report["errors"][0]["message"]


def test_a_forward_that_exits_is_an_input_error_with_a_report(tmp_path):
    model = """
import torch
from torch import nn


class Quitter(nn.Module):
    def forward(self, x):
        raise SystemExit(0)
"""
    target = write_target(
        tmp_path, "quitter", "def build():\n    return Quitter(), (torch.ones(2),)\n", model=model
    )
    done = exportcheck("validate", target, *FAST, "--format", "json")
    assert done.returncode == 2
    assert "sys.exit(0)" in json.loads(done.stdout)["errors"][0]["message"]


def test_prints_of_the_target_never_reach_the_report_stream(tmp_path):
    body = (
        "import os\n"
        "def build():\n"
        "    print('hello from build')\n"
        "    os.write(1, b'raw fd write\\n')\n" + PLAIN_BUILD.replace("def build():\n", "")
    )
    target = write_target(tmp_path, "chatty", body)
    done = exportcheck("validate", target, *FAST, "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["subjects"] == [str(target)]
    assert "hello from build" in done.stderr and "raw fd write" in done.stderr


def test_a_target_that_forks_gives_one_report(tmp_path):
    body = "import os\ndef build():\n    os.fork()\n" + PLAIN_BUILD.replace("def build():\n", "")
    target = write_target(tmp_path, "forker", body)
    done = exportcheck("validate", target, *FAST, "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # one JSON document: a second would not parse
    assert report["subjects"] == [str(target)] and report["comparisons"]


def test_a_target_that_changes_directory_does_not_move_the_report(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    body = f"import os\ndef build():\n    os.chdir({str(elsewhere)!r})\n" + PLAIN_BUILD.replace(
        "def build():\n", ""
    )
    write_target(tmp_path, "mover", body)
    write_target(tmp_path, "second", PLAIN_BUILD)
    done = exportcheck(
        "validate", "mover.py", "second.py", *FAST, "-o", "report.json", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["subjects"] == ["mover.py", "second.py"] and not report["errors"]
    assert not list(elsewhere.iterdir())


def test_an_explicit_missing_device_is_an_input_error(plain_target):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    done = exportcheck(
        "validate", plain_target, "--formats", "onnx-legacy", "--no-probes", "--device", "cuda"
    )
    assert done.returncode == 2
    # Without a GPU driver the flag is refused before torch is imported; with one, by torch.
    assert "--device: cuda was asked for, but" in done.stderr
    assert done.stderr.count("\n") == 1


def test_the_default_devices_skip_a_missing_gpu_with_a_note(plain_target):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    done = exportcheck(
        "validate", plain_target, "--formats", "onnx-legacy", "--no-probes", "--format", "json"
    )
    assert done.returncode == 0, done.stderr
    assert any(s["device"] == "cuda" for s in json.loads(done.stdout)["skipped"])


NOT_EXPORTABLE = """
import torch
from torch import nn


class DataDependent(nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x
"""


def test_every_comparison_skipped_is_reported_and_fails_when_required(tmp_path):
    target = write_target(
        tmp_path,
        "unexportable",
        "def build():\n    return DataDependent(), (torch.ones(2),)\n",
        model=NOT_EXPORTABLE,
    )
    args = ("validate", target, "--formats", "exported-program", "--no-probes", "--device", "cpu")
    allowed = exportcheck(*args, "--format", "json")
    report = json.loads(allowed.stdout)
    assert report["comparisons"] == [] and report["uncompared"] == [str(target)]
    assert allowed.returncode == 0, allowed.stderr
    required = exportcheck(*args, "--format", "json", "--require-comparisons")
    assert required.returncode == 1
    assert json.loads(required.stdout)["exit_code"] == 1
    assert "no comparison ran (every one skipped)" in required.stderr


BROKEN_MODES = """
import torch
from torch import nn


class Body(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def train(self, mode=True):
        if not mode:
            raise ValueError("eval is not supported")
        return super().train(mode)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = Body()

    def forward(self, x):
        return self.body.fc(x)
"""


def test_a_model_whose_eval_raises_is_an_input_error_naming_the_module(tmp_path: Path):
    target = write_target(
        tmp_path,
        "broken",
        "def build():\n    return Net(), (torch.ones(1, 2),)\n",
        model=BROKEN_MODES,
    )
    done = exportcheck("validate", target, *FAST, "--format", "json")
    assert done.returncode == 2, done.stderr
    report = json.loads(done.stdout)
    [problem] = report["errors"]
    assert "Body.train() of module 'body'" in problem["message"]
    assert "ValueError: eval is not supported" in problem["message"]
    assert problem["error"] == "ModelRunError"
    assert report["subjects"] == [str(target)]


def test_audit_of_a_model_whose_eval_raises_is_an_input_error(tmp_path: Path):
    target = write_target(
        tmp_path,
        "broken",
        "def build():\n    return Net(), (torch.ones(1, 2),)\n",
        model=BROKEN_MODES,
    )
    done = exportcheck("audit", target, "--format", "json")
    assert done.returncode == 2, done.stderr
    [problem] = json.loads(done.stdout)["errors"]
    assert "Body.train() of module 'body' raised ValueError" in problem["message"]

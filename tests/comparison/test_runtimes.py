"""The runtime plug-ins: one registry, each runtime's verdict on real exports of the sample
models, refusals attributed to the mode problem behind them, and the runtime matrix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from exportcheck.comparison import runtimes as registry
from exportcheck.comparison.runtimes import RUNTIMES, RuntimeRefused, get_runtime
from exportcheck.results.runtimes import matrix_rows
from exportcheck.rules import RULES
from tests.cli.processes import FAST, PLAIN_BUILD, write_target
from tests.cli.test_early_checks import probed
from tests.conftest import SAMPLE_NAMES, SAMPLES, build_sample, sample_expected


def installed(name: str) -> bool:
    return get_runtime(name).installed()


def needs(name: str):
    return pytest.mark.skipif(
        not installed(name), reason=f"{name} is not installed (pip install 'exportcheck[{name}]')"
    )


def subject_of(name: str) -> str:
    return f"{SAMPLES / name}.py:build"


def test_the_registry_names_each_runtime_once_and_each_module_is_listed():
    names = [r.name for r in RUNTIMES]
    assert len(names) == len(set(names)) == 4
    modules = {type(getattr(r, "inner", r)).__module__.rsplit(".", 1)[-1] for r in RUNTIMES}
    package = Path(registry.__file__).parent
    found = {p.stem for p in package.glob("*_runtime.py")}
    assert modules == found
    for runtime in RUNTIMES:
        assert runtime.kinds and runtime.title and runtime.extra and runtime.package


def test_runtime_codes_sit_with_the_compare_rules():
    compare = {r.slug: r.code for r in RULES if r.stage == "compare"}
    assert compare["runtime-refusal"] == "EC304"
    assert compare["specialised-dimension"] == "EC305"
    assert compare["runtime-batch-statistics"] == "EC306"


@needs("openvino")
def test_openvino_refuses_a_training_dropout_in_its_own_words(sample_exports):
    path = sample_exports[("bad_functional_dropout", "eval", "onnx-legacy")]
    with pytest.raises(RuntimeRefused) as refused:
        get_runtime("openvino").load(path, "onnx", "cpu", "CPU", None)
    message = str(refused.value)
    assert message.startswith("Training mode is not supported for Dropout op")
    assert "\n" not in message and "core.cpp" not in message


@needs("tract")
def test_tract_refuses_a_training_dropout_without_its_backtrace(sample_exports):
    path = sample_exports[("bad_functional_dropout", "eval", "onnx-legacy")]
    runner = get_runtime("tract").load(path, "onnx", "cpu", None, None)
    import torch

    with pytest.raises(RuntimeRefused) as refused:
        runner.run((torch.randn(2, 16),))
    message = str(refused.value)
    assert "Dropout in training mode with a non-zero ratio is not supported" in message
    assert "backtrace" not in message.lower() and "\n" not in message


def _problem(report, name: str, rule: str):
    return next(p for p in report.problems if p.subject == subject_of(name) and p.rule == rule)


@needs("openvino")
def test_openvino_refusal_is_evidence_of_the_training_dropout(demo_report):
    problem = _problem(demo_report, "bad_functional_dropout", "training-dropout")
    refusals = [
        f
        for f in problem.evidence
        if f.rule == "runtime-refusal" and f.message.startswith("OpenVINO refuses")
    ]
    assert refusals, [f.message for f in problem.evidence]
    assert all("Training mode is not supported for Dropout op" in f.message for f in refusals)
    source = (SAMPLES / "bad_functional_dropout.py").read_text().splitlines()
    line = next(n for n, text in enumerate(source, 1) if "return F.dropout(" in text)
    assert any(
        f"a consequence of EC101 at bad_functional_dropout.py:{line}" in f.message for f in refusals
    )
    cells = [c for c in demo_report.runtime_matrix if c.run.subject == problem.subject]
    assert {c.verdict for c in cells if c.run.runtime == "openvino"} == {"refuses"}


@needs("openvino")
def test_openvino_batch_statistics_are_evidence_of_the_training_batchnorm(demo_report):
    problem = _problem(demo_report, "bad_batchnorm_no_running_stats", "training-batchnorm")
    assert problem.code == "EC102"
    on_openvino = [
        f
        for f in problem.evidence
        if f.rule == "runtime-batch-statistics" and "openvino" in (f.location.runtime or "")
    ]
    assert on_openvino, [f.message for f in problem.evidence]
    assert "computes batch statistics" in on_openvino[0].message
    cells = [
        c
        for c in demo_report.runtime_matrix
        if c.run.subject == problem.subject and c.run.runtime == "openvino"
    ]
    assert any(c.batch_statistics and c.shown == "matches (batch stats)" for c in cells)


def test_clean_samples_pass_on_every_installed_runtime(demo_report):
    """Every cell matches, except a runtime's own limitation the sample declares in its words
    (tract and the LSTM's Scan); a declared limitation that stops showing fails too."""
    clean = [n for n in SAMPLE_NAMES if not sample_expected(n)["validate"]]
    assert clean
    present = {r.name for r in RUNTIMES if r.installed()}
    for name in clean:
        limits = sample_expected(name).get("runtimes", {})
        cells = [c for c in demo_report.runtime_matrix if c.run.subject == subject_of(name)]
        assert {c.run.runtime for c in cells} == present, name
        for cell in cells:
            limit = limits.get(cell.run.runtime)
            if limit is None:
                assert cell.verdict == "matches", (name, cell.run.configuration, cell.run.detail)
            else:
                assert cell.verdict == "refuses" and limit in cell.run.detail, (name, cell)


@needs("tract")
@pytest.mark.parametrize("fmt", ["onnx", "onnx-legacy"])
def test_tract_runs_the_lstm_at_every_batch_size_it_is_given(sample_exports, fmt):
    """Planned with symbolic sizes, tract binds the LSTM's Scan to batch 1 and refuses batch 3
    ("Clashing resolution for expression"); the dynamo export's stored intermediate shapes
    clash with concrete ones. Planned per input shape, ignoring those annotations, as tract's
    users load exports, both files run and match the model at both sizes."""
    import numpy as np
    import torch

    model, inputs = build_sample("lstm")
    model.eval()
    runner = get_runtime("tract").load(
        sample_exports[("lstm", "eval", fmt)], "onnx", "cpu", None, None
    )
    for batch in (3, 5, 3):
        x = torch.randn(batch, *inputs[0].shape[1:])
        with torch.no_grad():
            expected = model(x).numpy()
        (got,) = runner.run((x,))
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@needs("tract")
def test_input_facts_are_written_as_tract_parses_them(sample_exports):
    import numpy as np
    import tract

    from exportcheck.comparison.runtimes.tract_runtime import input_fact

    arrays = {
        "3,7,12,f32": np.zeros((3, 7, 12), np.float32),
        "2,i64": np.zeros(2, np.int64),
        "4,1,bool": np.zeros((4, 1), bool),
        "f16": np.zeros((), np.float16),
        "0,5,u8": np.zeros((0, 5), np.uint8),
    }
    parsed = tract.onnx().load(sample_exports[("cnn", "eval", "onnx-legacy")])
    for written, array in arrays.items():
        assert input_fact(array) == written
        assert str(parsed.fact(written)) == written


DETERMINANT = """
import torch
from torch import nn


class Volume(nn.Module):
    '''A clean model with an operator tract lacks (ONNX Det).'''

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(16, 16)

    def forward(self, x):
        return torch.linalg.det(self.proj(x).reshape(-1, 4, 4))


def build():
    torch.manual_seed(0)
    return Volume().eval(), (torch.randn(3, 16),)
"""


@needs("tract")
def test_a_refusal_nothing_explains_is_fixed_as_the_runtimes_limit_not_as_a_mode_problem(
    demo_report, tmp_path
):
    """tract (and OpenVINO) refuse a clean model's Det, their own limit, and the functional
    dropout (EC101): each problem's fix line speaks to its own case, and each refusal is the
    runtime's reason in one line."""
    from exportcheck.pipeline.validation import validate_targets
    from exportcheck.reporters.text import render_text

    target = tmp_path / "volume.py"
    target.write_text(DETERMINANT)
    report = validate_targets(
        [f"{target}:build"], formats=("onnx", "onnx-legacy"), devices="cpu", probes=False
    )
    (refusal,) = [p for p in report.problems if p.rule == "runtime-refusal"]
    assert not refusal.explained and len(refusal.artifacts) == 2
    refusing = {"tract/cpu", *(["openvino/CPU/cpu"] if installed("openvino") else [])}
    assert set(refusal.runtimes) == refusing  # each configuration once, for two files
    det = next(n for n, text in enumerate(DETERMINANT.splitlines(), 1) if "linalg.det" in text)
    assert refusal.source == (str(target), det)  # the dynamo export's Det node, placed
    reasons = {c.run.runtime: c.run.detail for c in report.runtime_matrix if c.verdict == "refuses"}
    assert "Unimplemented(Det)" in reasons["tract"]
    if installed("openvino"):
        assert reasons["openvino"].startswith("No conversion rule found for operations: Det-")
    cells = {(c.run.artifact_format, c.run.runtime): c.verdict for c in report.runtime_matrix}
    assert cells[("onnx", "onnxruntime")] == cells[("onnx-legacy", "onnxruntime")] == "matches"

    def fix_after(lines: list[str], headline_part: str) -> str:
        at = next(i for i, line in enumerate(lines) if headline_part in line)
        return next(line for line in lines[at:] if line.startswith("    fix: "))

    limit = fix_after(render_text(report, width=None).splitlines(), "EC304 runtime-refusal")
    assert limit.startswith("    fix: The refusal is the runtime's own limit, not a mode problem")
    assert "model.eval()" not in limit
    dropout = _problem(demo_report, "bad_functional_dropout", "training-dropout")
    assert any(f.rule == "runtime-refusal" for f in dropout.evidence)
    demo_lines = render_text(demo_report, width=None).splitlines()
    assert "model.eval()" in fix_after(demo_lines, "EC101 training-dropout")


def test_the_matrix_is_one_row_per_artifact_with_the_worst_configuration(demo_report):
    cells = [
        c
        for c in demo_report.runtime_matrix
        if c.run.subject == subject_of("bad_functional_dropout")
    ]
    runtimes, rows = matrix_rows(cells)
    assert runtimes[0] == "onnxruntime" and "torch" in runtimes
    by_format = {r.artifact_format: r.verdicts for r in rows}
    # the default level deletes the Dropout and matches; disable_all runs it: the cell differs
    assert by_format["onnx-legacy"]["onnxruntime"] == "differs"
    assert by_format["torchscript-trace"] == {"torch": "differs"}


def test_a_runtime_that_is_not_installed_is_skipped_with_its_extra(tmp_path):
    target = write_target(tmp_path, "plain", PLAIN_BUILD)
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['tract'] = None\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-m", "exportcheck", "validate", f"{target}:build", *FAST, "-f", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    import json

    report = json.loads(done.stdout)
    assert {
        "step": "tract runtime",
        "reason": "tract is not installed (pip install 'exportcheck[tract]')",
    }.items() <= next(s for s in report["skipped"] if s["step"] == "tract runtime").items()
    assert "tract" not in {c["runtime"] for c in report["runtimes"]}


def test_a_runtime_asked_for_but_missing_is_exit_2_before_torch(tmp_path):
    target = write_target(tmp_path, "plain", PLAIN_BUILD)
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['openvino'] = None\n")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    code, stderr, torch_imported = probed(
        "validate", target.name, "--runtimes", "onnxruntime,openvino", cwd=tmp_path, env=env
    )
    assert code == 2 and stderr.count("\n") == 1, stderr
    assert "--runtimes: asked for, but openvino: openvino is not installed" in stderr
    assert "exportcheck[openvino]" in stderr
    assert not torch_imported


def test_runtimes_chooses_among_them(tmp_path):
    target = write_target(tmp_path, "plain", PLAIN_BUILD)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "exportcheck",
            "validate",
            f"{target}:build",
            *FAST,
            "--runtimes",
            "torch",
            "-f",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    import json

    report = json.loads(done.stdout)
    assert report["comparisons"] == [] and report["runtimes"] == []  # onnx-legacy: no torch


def test_the_config_takes_runtimes_as_the_flag_does(tmp_path):
    from exportcheck.errors import ConfigError
    from exportcheck.settings.config import load_settings

    (tmp_path / "pyproject.toml").write_text(
        '[tool.exportcheck]\nruntimes = ["openvino", "onnxruntime"]\n'
    )
    settings = load_settings(cwd=str(tmp_path))
    assert settings.runtimes == ("openvino", "onnxruntime")
    assert settings.to_dict()["runtimes"] == ["openvino", "onnxruntime"]
    flagged = load_settings(cwd=str(tmp_path), overrides={"runtimes": ("tract",)})
    assert flagged.runtimes == ("tract",) and flagged.source("runtimes") == "command line"
    (tmp_path / "pyproject.toml").write_text('[tool.exportcheck]\nruntimes = ["tensorrt"]\n')
    with pytest.raises(ConfigError, match="runtimes must be one of onnxruntime, openvino"):
        load_settings(cwd=str(tmp_path))

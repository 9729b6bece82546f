"""The integration recipes in docs/ci.md, tried as a new user would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.conftest import ROOT, SAMPLES

EXPORTCHECK = [sys.executable, "-m", "exportcheck"]
SCHEMAS = ROOT.parent / "shared" / "schemas"
SARIF_SCHEMA = SCHEMAS / "sarif-schema-2.1.0.json"
JUNIT_SCHEMA = SCHEMAS / "jenkins-junit-10.xsd"
MC_DROPOUT_RECIPE = "### Accepting a reviewed problem: an MC-dropout model"


def validate_reports(project: Path) -> None:
    """The SARIF and JUnit files against the official schemas in shared/, where present."""
    if not (SARIF_SCHEMA.is_file() and JUNIT_SCHEMA.is_file()):
        pytest.skip(f"the official report schemas are not in {SCHEMAS}")
    import xmlschema

    sarif = json.loads((project / "reports" / "exportcheck.sarif").read_text())
    jsonschema.Draft4Validator(json.loads(SARIF_SCHEMA.read_text())).validate(sarif)
    xmlschema.XMLSchema(str(JUNIT_SCHEMA)).validate(str(project / "reports" / "exportcheck.xml"))


def documented_mc_dropout_settings() -> str:
    text = (ROOT / "docs" / "ci.md").read_text()
    recipe = text.split(MC_DROPOUT_RECIPE, 1)[1]
    return recipe.split("```toml\n", 1)[1].split("```", 1)[0]


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def workflow() -> dict:
    return yaml.safe_load((ROOT / "docs" / "examples" / "github-workflow.yml").read_text())


def step_command(job: str, step: str, command: str, **expressions: str) -> list[str]:
    """The `exportcheck COMMAND` line of a step of the example workflow, as words, with the
    `${{ NAME }}` expressions given filled in."""
    steps = workflow()["jobs"][job]["steps"]
    script = next(s["run"] for s in steps if s.get("name") == step)
    line = next(line for line in script.splitlines() if line.strip().startswith(command))
    for name, value in expressions.items():
        line = line.replace("${{ " + name + " }}", value)
    return line.split("||", 1)[0].split()


def workflow_validate_command(shard: str, index: int = 0) -> list[str]:
    expressions = {"matrix.shard": shard, "strategy.job-index": str(index)}
    words = step_command("exportcheck", "Validate", "exportcheck validate", **expressions)
    return [*EXPORTCHECK, *words[1:]]


def run_workflow(
    project: Path, extra: list[str], shards: tuple[str, ...] = ("1/1",)
) -> subprocess.CompletedProcess:
    """The example workflow in one folder: each matrix job's Validate step, the artifacts'
    download into shards/, and the merge job's Merge step, whose result is returned."""
    (project / "shards").mkdir(exist_ok=True)
    for index, shard in enumerate(shards):
        validated = run(workflow_validate_command(shard, index) + extra, project)
        assert validated.returncode == 0, validated.stderr
        report = project / "reports" / f"shard-{index}.json"
        shutil.copy(report, project / "shards" / report.name)
    words = step_command("merge", "Merge", "exportcheck merge")
    files = [str(p.relative_to(project)) for p in sorted((project / "shards").glob("shard-*.json"))]
    words = [w for word in words[1:] for w in (files if "*" in word else [word])]
    return run([*EXPORTCHECK, *words], project)


def make_project(tmp_path: Path) -> Path:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(SAMPLES / "bad_functional_dropout.py", models / "tagger.py")
    shutil.copy(SAMPLES / "custom_mode_layer.py", models / "scaler.py")
    (tmp_path / "reports").mkdir()
    return tmp_path


def test_ci_run_fails_then_passes_with_the_documented_mc_dropout_suppression(tmp_path):
    project = make_project(tmp_path)
    formats = ["--formats", "onnx-legacy,torchscript-trace"]
    failed = run_workflow(project, formats)
    assert failed.returncode == 1, failed.stderr

    suites = ET.parse(project / "reports" / "exportcheck.xml").getroot()
    failures = [f for f in suites.iter("failure")]
    assert any(
        f.get("type") == "training-dropout" and "block" in (f.text or "") + (f.get("message") or "")
        for f in failures
    )
    names = " ".join(case.get("name", "") for case in suites.iter("testcase"))
    assert "training-dropout" in names and "block" in names

    validate_reports(project)
    summary = (project / "reports" / "summary.md").read_text()
    assert "| error | EC101 `training-dropout` | `models/tagger.py:build` |" in summary
    assert "1 of 2 subject(s) failed" in summary
    # one problem for the one cause, however many artifacts and runtimes show it
    assert [f.get("type") for f in failures] == ["training-dropout"]

    (project / "pyproject.toml").write_text(documented_mc_dropout_settings())
    passed = run_workflow(project, formats)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    suites = ET.parse(project / "reports" / "exportcheck.xml").getroot()
    assert not list(suites.iter("failure"))
    skipped = [s.get("message", "") for s in suites.iter("skipped")]
    assert any("MC dropout" in message for message in skipped)
    validate_reports(project)
    sarif = json.loads((project / "reports" / "exportcheck.sarif").read_text())
    assert all(r.get("suppressions") for r in sarif["runs"][0]["results"] if r["level"] == "error")


def test_pre_commit_hook_entry_checks_changed_model_files(tmp_path, sample_exports):
    [hook] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "exportcheck-inspect"
    import re

    pattern = re.compile(hook["files"])
    train = tmp_path / "train.onnx"
    clean = tmp_path / "clean.pt2"
    shutil.copy(sample_exports[("cnn", "train", "onnx")], train)
    shutil.copy(sample_exports[("cnn", "eval", "exported-program")], clean)
    assert (
        pattern.search(train.name)
        and pattern.search(clean.name)
        and not pattern.search("notes.txt")
    )
    entry = hook["entry"].split()
    assert entry[0] == "exportcheck"
    assert run([*EXPORTCHECK, *entry[1:], str(train), str(clean)], tmp_path).returncode == 1
    assert run([*EXPORTCHECK, *entry[1:], str(clean)], tmp_path).returncode == 0


def test_documented_settings_example_is_valid(tmp_path):
    text = (ROOT / "docs" / "ci.md").read_text()
    block = text.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "pyproject.toml").write_text(block)
    result = run([*EXPORTCHECK, "config"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "reviewed 2026-11" in result.stdout
    assert os.fspath(tmp_path / "pyproject.toml") in result.stdout


def test_workflow_grants_what_its_upload_steps_need():
    """SARIF upload writes security events and the JUnit action writes checks: a read-only
    default token (many organisations) fails both without these."""
    permissions = workflow()["permissions"]
    assert permissions["security-events"] == "write" and permissions["checks"] == "write"
    assert permissions["contents"] == "read"


TOP_LEVEL_MC_DROPOUT = """
import torch
import torch.nn.functional as F
from torch import nn


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return F.dropout(self.fc(x), 0.1)  # MC dropout in the top-level forward


def build():
    torch.manual_seed(0)
    return Tagger().eval(), (torch.randn(3, 4),)
"""


def test_mc_dropout_suppression_covers_a_top_level_forward(tmp_path):
    """The legacy export's Dropout has neither module nor line here: it is still the one cause's
    evidence, and the probe's nondeterminism too, so the one documented entry accepts it all."""
    (tmp_path / "models").mkdir()
    (tmp_path / "reports").mkdir()
    (tmp_path / "models" / "tagger.py").write_text(TOP_LEVEL_MC_DROPOUT)
    formats = ["--formats", "onnx,onnx-legacy,torchscript-trace"]
    failed = run_workflow(tmp_path, formats)
    assert failed.returncode == 1, failed.stderr
    failures = list(ET.parse(tmp_path / "reports" / "exportcheck.xml").getroot().iter("failure"))
    assert [f.get("type") for f in failures] == ["training-dropout"], [
        (f.get("message"), f.text) for f in failures
    ]

    (tmp_path / "pyproject.toml").write_text(documented_mc_dropout_settings())
    passed = run_workflow(tmp_path, formats)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert not list(ET.parse(tmp_path / "reports" / "exportcheck.xml").getroot().iter("failure"))


def test_merge_job_exits_as_the_unsharded_run(tmp_path):
    """Two matrix jobs' reports, merged by the merge job's command, fail as one run of both
    shards' models does, with the same problems."""
    from exportcheck.pipeline.parallel import shard_of

    project = make_project(tmp_path)
    # a third model, in whichever shard the two samples leave empty
    taken = {shard_of(f"models/{name}.py:build", 2) for name in ("tagger", "scaler")}
    extra = next(
        name
        for name in (f"ranker{i}" for i in range(50))
        if {shard_of(f"models/{name}.py:build", 2)} | taken == {1, 2}
    )
    shutil.copy(SAMPLES / "custom_mode_layer.py", project / "models" / f"{extra}.py")
    formats = ["--formats", "onnx-legacy"]
    merged = run_workflow(project, formats, ("1/2", "2/2"))
    whole = run(
        [*EXPORTCHECK, "validate", "models/", "--device", "cpu", *formats, "-q", "-f", "junit"],
        project,
    )
    assert merged.returncode == whole.returncode == 1, merged.stderr
    failures = list(ET.parse(project / "reports" / "exportcheck.xml").getroot().iter("failure"))
    expected = list(ET.fromstring(whole.stdout).iter("failure"))
    assert [f.get("type") for f in failures] == [f.get("type") for f in expected]
    assert [f.get("type") for f in failures] == ["training-dropout"]
    summary = (project / "reports" / "summary.md").read_text()
    assert "1 of 3 subject(s) failed" in summary
    validate_reports(project)

"""`exportcheck merge`: shard reports merged give the report and exit code of the unsharded run."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from exportcheck.pipeline.parallel import shard_of
from tests.cli.processes import FAST, PLAIN_BUILD, exportcheck, write_target

MEASURED = r"(?<![\w.-])\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w.-])"

# 128 dropped values, so two runs of the training-mode Dropout never draw the same mask (with
# the 4 values of `Tiny`'s output they did, one run in 16, and the report changed with it).
TRAINING_DROPOUT_BUILD = """
class Leaky(Tiny):
    def forward(self, x):
        return torch.nn.functional.dropout(self.fc(x).repeat(1, 32), 0.5, training=True)


def build():
    torch.manual_seed(0)
    return Leaky().eval(), (torch.randn(2, 4),)
"""


def problem_keys(report: dict) -> list[tuple]:
    return sorted(
        (p["rule"], p["code"], p["subject"], p["source_file"], p["fingerprint"], p["severity"])
        for p in report["problems"]
    )


def finding_keys(report: dict) -> list[str]:
    """Findings as text, with measured numbers masked: a training-mode Dropout runs randomly
    in ONNX Runtime, so its differences are new in every run."""
    return sorted(re.sub(MEASURED, "#", json.dumps(f, sort_keys=True)) for f in report["findings"])


def verdicts(report: dict) -> list[tuple]:
    return sorted(
        (c["subject"], c["format"], c["runtime"], c["optimization_level"], c["run"], c["passed"])
        for c in report["comparisons"]
    )


def names_in_both_shards(prefix: str) -> tuple[str, str]:
    """Two target names, one in each of two shards (membership is a hash of the name)."""
    by_shard: dict[int, str] = {}
    for i in range(50):
        by_shard.setdefault(shard_of(f"models/{prefix}{i}.py:build", 2), f"{prefix}{i}")
    return by_shard[1], by_shard[2]


@pytest.fixture(scope="module")
def sharded_project(tmp_path_factory) -> Path:
    """A folder of tiny targets, validated whole and as two shards (both non-empty)."""
    project = tmp_path_factory.mktemp("merge")
    models = project / "models"
    models.mkdir()
    for name in names_in_both_shards("clean"):
        write_target(models, name, PLAIN_BUILD)
    for name in names_in_both_shards("leaky"):
        write_target(models, name, TRAINING_DROPOUT_BUILD)
    whole = exportcheck("validate", "models", *FAST, "-q", "-o", "json=whole.json", cwd=project)
    (project / "whole.rc").write_text(str(whole.returncode))
    for k in (1, 2):
        shard = exportcheck(
            "validate", "models", *FAST, "-q", "--shard", f"{k}/2", "-o", f"json=s{k}.json",
            cwd=project,
        )  # fmt: skip
        assert shard.returncode in (0, 1), shard.stderr
    return project


def test_merged_shards_equal_the_unsharded_run(sharded_project):
    project = sharded_project
    shards = [json.loads((project / f"s{k}.json").read_text()) for k in (1, 2)]
    assert all(s["subjects"] and s["problems"] for s in shards)  # both shards did work
    merged = exportcheck("merge", "s1.json", "s2.json", "-q", "-o", "json=merged.json",
                         "-o", "sarif=merged.sarif", "-o", "junit=merged.xml", cwd=project)  # fmt: skip
    whole = json.loads((project / "whole.json").read_text())
    result = json.loads((project / "merged.json").read_text())
    assert merged.returncode == int((project / "whole.rc").read_text()) == 1, merged.stderr
    assert problem_keys(result) == problem_keys(whole)
    assert finding_keys(result) == finding_keys(whole)
    assert verdicts(result) == verdicts(whole)
    assert sorted(result["subjects"]) == sorted(whole["subjects"])
    assert (result["summary"], result["exit_code"]) == (whole["summary"], whole["exit_code"])
    sarif = json.loads((project / "merged.sarif").read_text())
    assert {r["ruleId"] for r in sarif["runs"][0]["results"] if r["level"] == "error"}
    failures = list(ET.parse(project / "merged.xml").getroot().iter("failure"))
    assert [f.get("type") for f in failures] == ["training-dropout"] * 2


def test_merging_one_report_reproduces_it(sharded_project):
    project = sharded_project
    again = exportcheck("merge", "whole.json", "-q", "-o", "json=again.json", cwd=project)
    assert again.returncode == int((project / "whole.rc").read_text()), again.stderr
    whole = json.loads((project / "whole.json").read_text())
    assert json.loads((project / "again.json").read_text()) == whole


def test_fail_on_judges_the_merged_report(sharded_project):
    merged = exportcheck(
        "merge", "s1.json", "s2.json", "-q", "--fail-on", "never", cwd=sharded_project
    )
    assert merged.returncode == 0, merged.stderr


def test_a_truncated_report_is_an_input_error_naming_it(sharded_project, tmp_path):
    truncated = tmp_path / "cut.json"
    truncated.write_text((sharded_project / "s1.json").read_text()[:200])
    done = exportcheck("merge", truncated, sharded_project / "s2.json", "-q", cwd=tmp_path)
    assert done.returncode == 2
    assert [line for line in done.stderr.splitlines() if line] == [done.stderr.strip()]
    assert "cut.json" in done.stderr and "not a JSON report" in done.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"tool": "something-else"}', "not an exportcheck JSON report"),
        ('{"tool": "exportcheck", "version": "0.0.1"}', "written by exportcheck 0.0.1"),
        ('{"tool": "exportcheck", "version": "%s"}', "no 'problems' field"),
        ("[1, 2]", "not an exportcheck JSON report"),
    ],
)
def test_foreign_or_other_version_reports_are_refused(tmp_path, content, message):
    from exportcheck import __version__

    report = tmp_path / "shard.json"
    report.write_text(content.replace("%s", __version__))
    done = exportcheck("merge", report, cwd=tmp_path)
    assert done.returncode == 2
    assert "shard.json" in done.stderr and message in done.stderr, done.stderr

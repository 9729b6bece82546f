"""Paths in reports: relative to the repository root, library code by its package path,
anything else outside as `<outside>/name`; never absolute, in any format; fingerprints the same
from every working folder and every checkout."""

from __future__ import annotations

import json
import sysconfig
from dataclasses import replace
from pathlib import Path

import pytest

from exportcheck.reporters import REPORTERS, render
from exportcheck.results.findings import Location
from exportcheck.results.problems import repository_root, shown_path
from exportcheck.results.report import Report
from exportcheck.rules import OutputMismatch, SubmoduleLeftTraining, TrainingBatchNorm
from tests.reporters.conftest import RULES

ROOT = "/home/ci/work/repo"
PURELIB = sysconfig.get_paths()["purelib"]


@pytest.mark.parametrize(
    ("path", "cwd", "shown"),
    [
        (f"{ROOT}/models/tagger.py", None, "models/tagger.py"),
        (f"{ROOT}/models/tagger.py", f"{ROOT}/models", "models/tagger.py"),
        ("tagger.py", f"{ROOT}/models", "models/tagger.py"),
        ("../train.py", f"{ROOT}/models", "train.py"),
        ("../../elsewhere.py", f"{ROOT}/models", "<outside>/elsewhere.py"),
        ("models/tagger.py", None, "models/tagger.py"),
        ("models\\tagger.py", None, "models/tagger.py"),
        # a working folder outside the root: relative paths are left as given
        ("models/tagger.py", "/somewhere/else", "models/tagger.py"),
        (f"{ROOT}/.venv/lib/python3.12/site-packages/torch/nn/modules/batchnorm.py", None,
         "torch/nn/modules/batchnorm.py"),
        ("/usr/lib/python3/dist-packages/torch/nn/modules/linear.py", None,
         "torch/nn/modules/linear.py"),
        (f"{PURELIB}/somepkg/layer.py", None, "somepkg/layer.py"),
        ("/tmp/pytest-7/model.onnx", None, "<outside>/model.onnx"),
        ("C:\\Users\\me\\model.onnx", None, "<outside>/model.onnx"),
        ("\\\\server\\share\\model.onnx", None, "<outside>/model.onnx"),
    ],
)  # fmt: skip
def test_shown_path(path: str, cwd: str | None, shown: str) -> None:
    assert shown_path(path, ROOT, cwd) == shown


def test_repository_root_is_the_nearest_folder_with_git(tmp_path: Path) -> None:
    (tmp_path / "repo" / "models" / "deep").mkdir(parents=True)
    (tmp_path / "repo" / ".git").mkdir()
    assert repository_root(str(tmp_path / "repo" / "models" / "deep")) == str(tmp_path / "repo")
    # a worktree or a submodule has a `.git` file
    (tmp_path / "repo" / "models" / ".git").write_text("gitdir: elsewhere\n")
    assert repository_root(str(tmp_path / "repo" / "models" / "deep")) == str(
        tmp_path / "repo" / "models"
    )


def test_outside_a_repository_the_root_is_the_working_folder(tmp_path: Path) -> None:
    if repository_root(str(tmp_path)) != str(tmp_path):
        pytest.skip("the temporary folder is inside a repository")
    (tmp_path / "sub").mkdir()
    assert repository_root(str(tmp_path / "sub")) == str(tmp_path / "sub")


def report_at(root: str, cwd: str, subject: str, export: str = "exports/tagger.onnx") -> Report:
    """A run in `cwd` of a checkout at `root`: a target with a stock module left training (its
    class in an installed torch), a BatchNorm in an artifact given by absolute path, and an
    artifact outside the checkout."""
    artifact = f"{root}/exports/tagger.onnx"
    return Report(
        rules=RULES,
        subjects=(subject, export, "/tmp/x/odd.onnx"),
        findings=(
            SubmoduleLeftTraining.finding(
                "bn (BatchNorm1d) is still in training mode after model.eval()",
                subject,
                Location(
                    module="bn",
                    source_file=f"{root}/.venv/lib/python3.12/site-packages/torch/nn/modules/"
                    "batchnorm.py",
                    source_line=40,
                ),
            ),
            TrainingBatchNorm.finding(
                "BatchNormalization uses batch statistics",
                export,
                Location(
                    artifact=artifact,
                    node="bn",
                    module="bn",
                    source_file=f"{root}/models/tagger.py",
                    source_line=12,
                ),
            ),
            OutputMismatch.finding(
                "differs", "/tmp/x/odd.onnx", Location(artifact="/tmp/x/odd.onnx")
            ),
        ),
        root=root,
        cwd=cwd,
    )


@pytest.mark.parametrize("format_name", sorted(REPORTERS))
def test_no_absolute_path_in_any_format(format_name: str) -> None:
    report = report_at(ROOT, f"{ROOT}/models", "tagger.py:build", "../exports/tagger.onnx")
    report = replace(report, subjects=report.subjects[:2], findings=report.findings[:2])
    text = render(report, format_name, width=None, verbose=True)
    if format_name == "sarif":  # the one place SARIF wants the root as a file URI
        log = json.loads(text)
        (run,) = log["runs"]
        assert run.pop("originalUriBaseIds") == {"%SRCROOT%": {"uri": f"file://{ROOT}/"}}
        text = json.dumps(log)
    assert ROOT not in text and "/.venv/" not in text and "site-packages" not in text
    assert "models/tagger.py" in text


def test_json_shows_finding_and_problem_sources_alike() -> None:
    data = report_at(ROOT, ROOT, "models/tagger.py:build").to_dict()
    assert [p["source_file"] for p in data["problems"]] == [
        "torch/nn/modules/batchnorm.py",
        "models/tagger.py",
        None,
    ]
    locations = [f["location"] for f in data["findings"]]
    assert [loc["source_file"] for loc in locations] == [
        "torch/nn/modules/batchnorm.py",
        "models/tagger.py",
        None,
    ]
    assert [loc["artifact"] for loc in locations] == [
        None,
        "exports/tagger.onnx",
        "<outside>/odd.onnx",
    ]


def sarif_results(report: Report) -> list[dict[str, object]]:
    (run,) = json.loads(render(report, "sarif", verbose=True))["runs"]
    return run["results"]


def test_fingerprints_are_the_same_from_every_checkout_and_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at_root = report_at(ROOT, ROOT, "models/tagger.py:build")
    other = "/builds/other/checkout"
    in_models = report_at(other, f"{other}/models", "tagger.py:build", "../exports/tagger.onnx")
    first = [r["partialFingerprints"] for r in sarif_results(at_root)]
    assert first == [r["partialFingerprints"] for r in sarif_results(in_models)]
    assert len({f["exportcheck/v1"] for f in first}) == len(first)
    # rendering is pure: the process's own working folder changes nothing
    monkeypatch.chdir(tmp_path)
    assert first == [r["partialFingerprints"] for r in sarif_results(at_root)]


def test_sarif_places_every_result_in_the_repository() -> None:
    results = sarif_results(report_at(ROOT, f"{ROOT}/models", "tagger.py:build"))
    places = [
        r.get("locations", [{}])[0]
        .get("physicalLocation", {})
        .get("artifactLocation", {})
        .get("uri")
        for r in results
    ]
    # a library class: the target file at line 1; the artifact's Python source; an artifact
    # outside the checkout has no place a viewer could open
    assert places == ["models/tagger.py", "models/tagger.py", None]
    lines = [r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in results[:2]]
    assert lines == [1, 12]
    assert results[0]["properties"]["source"] == {
        "file": "torch/nn/modules/batchnorm.py",
        "line": 40,
    }

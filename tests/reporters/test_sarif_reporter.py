"""SARIF 2.1.0: valid against the official schema, the whole rule catalogue, one result per
problem at its source line with a stable fingerprint."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest

from exportcheck import __version__
from exportcheck.reporters.sarif import artifact_uri, render_sarif
from exportcheck.results.catalogue import UNEXPLAINED_FIX
from exportcheck.results.report import Report
from exportcheck.rules import RULES
from exportcheck.rules.base import DOC_SECTIONS
from tests.reporters.conftest import ROOT, SHARED_SCHEMAS

SCHEMA_FILE = SHARED_SCHEMAS / "sarif-schema-2.1.0.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft4Validator:
    if not SCHEMA_FILE.is_file():
        pytest.skip(f"the official SARIF schema is not at {SCHEMA_FILE} (checkout outside shared/)")
    return jsonschema.Draft4Validator(json.loads(SCHEMA_FILE.read_text()))


def sarif(report: Report, verbose: bool = False) -> dict[str, Any]:
    return json.loads(render_sarif(report, verbose=verbose))


def run_of(report: Report, verbose: bool = False) -> dict[str, Any]:
    (run,) = sarif(report, verbose)["runs"]
    return run


def uris(log: dict[str, Any]) -> list[str]:
    found = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            if "artifactLocation" in value:
                found.append(value["artifactLocation"]["uri"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(log)
    return found


def test_validates_against_the_official_schema(
    sample_report: Report, validator: jsonschema.Draft4Validator
) -> None:
    log = sarif(sample_report)
    validator.validate(log)
    assert log["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    assert log["version"] == "2.1.0"


def test_uris_are_relative_references_or_file_uris(sample_report: Report) -> None:
    for uri in uris(sarif(sample_report)):
        parts = urlsplit(uri)
        assert parts.scheme in ("", "file"), uri
        assert " " not in uri and "\\" not in uri


def test_driver_lists_every_rule_with_its_documentation(samples: dict[str, Report]) -> None:
    driver = run_of(samples["clean"])["tool"]["driver"]
    assert driver["name"] == "exportcheck"
    assert driver["version"] == __version__
    assert [r["id"] for r in driver["rules"]] == [rule.slug for rule in RULES]
    levels = {"error": "error", "warning": "warning", "info": "note"}
    for descriptor, rule in zip(driver["rules"], RULES):
        assert descriptor["shortDescription"]["text"] == rule.summary
        assert descriptor["fullDescription"]["text"] == rule.doc()
        assert descriptor["help"]["text"] == rule.doc()
        markdown = descriptor["help"]["markdown"].splitlines()
        optional = [UNEXPLAINED_FIX] if UNEXPLAINED_FIX in rule.doc() else []
        for section in (*DOC_SECTIONS, *optional):
            heading = markdown.index(f"**{section}**")
            # dedented, so Markdown does not read the section body as a code block
            assert markdown[heading + 1] == ""
            assert markdown[heading + 2] and not markdown[heading + 2].startswith(" ")
        assert descriptor["defaultConfiguration"]["level"] == levels[rule.severity.label]
        assert descriptor["properties"]["code"] == rule.code


def test_one_result_per_problem_with_rule_index(samples: dict[str, Report]) -> None:
    report = samples["findings"]
    run = run_of(report, verbose=True)
    results = run["results"]
    assert len(results) == len(report.problems)
    rules = run["tool"]["driver"]["rules"]
    for result, problem in zip(results, report.problems):
        assert result["ruleId"] == problem.rule
        assert rules[result["ruleIndex"]]["id"] == problem.rule
        assert problem.cause.message in result["message"]["text"]
        assert result["properties"]["code"] == problem.code
    assert [r["level"] for r in results] == ["error", "warning", "note", "error", "error"]


def test_results_start_at_the_fail_on_threshold(samples: dict[str, Report]) -> None:
    report = samples["findings"]
    levels = {
        fail_on: [r["level"] for r in run_of(replace(report, fail_on=fail_on))["results"]]
        for fail_on in ("error", "warning", "info", "never")
    }
    # the suppressed training-batchnorm error stays, so its alert closes with the reason
    assert levels["error"] == ["error", "error", "error"]
    assert levels["warning"] == levels["never"] == ["error", "warning", "error", "error"]
    assert levels["info"] == ["error", "warning", "note", "error", "error"]
    assert run_of(report)["properties"]["resultsFrom"] == "error"
    assert run_of(report, verbose=True)["properties"]["resultsFrom"] == "info"


def test_every_result_has_a_line_under_the_source_root(samples: dict[str, Report]) -> None:
    for name in ("findings", "grouped", "comparisons"):
        run = run_of(samples[name], verbose=True)
        assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"].startswith("file:///")
        assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"].endswith("/")
        for result in run["results"]:
            (location,) = result["locations"]
            physical = location["physicalLocation"]
            assert physical["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
            assert physical["region"]["startLine"] >= 1


def test_grouped_problem_is_placed_at_its_source_line(samples: dict[str, Report]) -> None:
    results = run_of(samples["grouped"])["results"]
    assert [r["ruleId"] for r in results] == [
        "training-dropout",
        "submodule-left-training",
        "output-mismatch",
    ]
    dropout, left, unexplained = results
    (location,) = dropout["locations"]
    assert location["physicalLocation"] == {
        "artifactLocation": {"uri": "models/tagger.py", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 14},
    }
    assert dropout["message"]["text"].startswith("[head] Dropout runs in training mode")
    assert "outputs differ by up to 0.36" in dropout["message"]["text"]
    properties = dropout["properties"]
    assert len(properties["artifacts"]) == 2 and len(properties["runtimes"]) == 2
    assert properties["maxAbs"] == 0.36 and len(properties["evidence"]) == 5
    # a library class is not in the repository: the target file is the place, at line 1
    assert left["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "models/frozen.py", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 1},
    }
    assert left["properties"]["source"] == {"file": "torch/nn/modules/linear.py", "line": 53}
    assert unexplained["properties"]["explained"] is False
    assert "no finding explains it" in unexplained["message"]["text"]


def test_no_artifact_or_runtime_label_becomes_a_uri(samples: dict[str, Report]) -> None:
    for uri in uris(sarif(samples["grouped"])):
        assert "temporary" not in uri and "onnxruntime" not in uri and not uri.startswith("onnx")


def test_fingerprints_are_stable_and_distinct(samples: dict[str, Report]) -> None:
    report = samples["grouped"]
    first = [r["partialFingerprints"] for r in run_of(report)["results"]]
    moved = run_of(replace(report, root="/other/machine"))["results"]
    keys = [f["exportcheck/v1"] for f in first]
    assert len(set(keys)) == len(keys)
    # the project's file moved along with the root; library and target files keep their names
    assert [r["partialFingerprints"] for r in moved][1:] == first[1:]


def test_artifact_problem_locations(samples: dict[str, Report]) -> None:
    result = run_of(samples["findings"])["results"][0]
    (location,) = result["locations"]
    assert location["physicalLocation"]["artifactLocation"]["uri"] == "models/encoder.onnx"
    module, node = location["logicalLocations"]
    assert module == {"name": "dropout", "fullyQualifiedName": "encoder.dropout", "kind": "module"}
    assert node["fullyQualifiedName"] == "main_graph//encoder/dropout/Dropout"
    assert node["kind"] == "member"
    assert node["properties"] == {"opType": "Dropout"}


def test_target_subjects(samples: dict[str, Report]) -> None:
    file_target = run_of(samples["findings"])["results"][2]["locations"][0]
    assert file_target["physicalLocation"]["artifactLocation"]["uri"] == "train.py"
    assert file_target["logicalLocations"][0] == {
        "name": "build",
        "fullyQualifiedName": "train.py:build",
        "kind": "function",
    }
    module_target = run_of(samples["odd_paths"], verbose=True)["results"][0]["locations"][0]
    assert "physicalLocation" not in module_target
    assert module_target["logicalLocations"][0]["fullyQualifiedName"] == "pkg.models:build"


def test_undecodable_bytes_keep_the_log_valid_utf8(validator: jsonschema.Draft4Validator) -> None:
    from exportcheck.results.findings import Location
    from exportcheck.rules import RandomOp

    name = "we\udcffird\x1b.onnx"
    finding = RandomOp.finding("random", name, Location(artifact=name, node="n\udc80"))
    report = Report(subjects=(name,), findings=(finding,), root=ROOT, cwd=ROOT)
    text = render_sarif(report, verbose=True)
    text.encode("utf-8")
    validator.validate(json.loads(text))
    assert "we%FFird%1B.onnx" in text


@pytest.mark.parametrize(
    ("path", "uri"),
    [
        ("models/encoder.onnx", "models/encoder.onnx"),
        ("models\\encoder.onnx", "models/encoder.onnx"),
        ("/abs/dir/model.onnx", "file:///abs/dir/model.onnx"),
        ("C:\\models\\net.onnx", "file:///C:/models/net.onnx"),
        ("my dir/we:ird.onnx", "my%20dir/we%3Aird.onnx"),
        ("we:ird.onnx", "we%3Aird.onnx"),
        ("100%.onnx", "100%25.onnx"),
    ],
)
def test_artifact_uri(path: str, uri: str) -> None:
    assert artifact_uri(path) == uri


def test_suppressed_problem_keeps_its_result(samples: dict[str, Report]) -> None:
    results = run_of(samples["findings"])["results"]
    suppressed = [r for r in results if "suppressions" in r]
    assert len(suppressed) == 1
    assert suppressed[0]["ruleId"] == "training-batchnorm"
    assert suppressed[0]["suppressions"] == [
        {
            "kind": "external",
            "status": "accepted",
            "justification": "known issue | tracked in #12",
            "properties": {"entry": 0},
        }
    ]


def test_invocation_success_and_exit_code(samples: dict[str, Report]) -> None:
    (invocation,) = run_of(samples["clean"])["invocations"]
    assert invocation == {"executionSuccessful": True, "exitCode": 0}
    (invocation,) = run_of(samples["findings"])["invocations"]
    assert invocation["executionSuccessful"] is True
    assert invocation["exitCode"] == 1


def test_input_errors_become_error_notifications(samples: dict[str, Report]) -> None:
    run = run_of(samples["skipped_and_errors"])
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is False
    assert invocation["exitCode"] == 2
    notes = invocation["toolExecutionNotifications"]
    errors = [n for n in notes if n["level"] == "error"]
    assert [n["message"]["text"] for n in errors] == [
        "broken.onnx: not an ONNX model (protobuf parse failed)",
        "missing.pt: no such file or directory",
    ]
    assert errors[0]["properties"]["error"] == "UnreadableArtifactError"
    assert errors[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == (
        "broken.onnx"
    )
    skipped = [n for n in notes if n["level"] == "note"]
    assert len(skipped) == 2
    assert "no CUDA device" in skipped[0]["message"]["text"]
    (unused,) = invocation["toolConfigurationNotifications"]
    assert unused["level"] == "warning"
    assert "random-op" in unused["message"]["text"]
    assert run["results"] == []


def test_comparisons_are_counted_in_run_properties(samples: dict[str, Report]) -> None:
    run = run_of(samples["comparisons"])
    assert run["properties"]["comparisons"] == {"total": 3, "passed": 1, "failed": 2}
    assert [r["ruleId"] for r in run["results"]] == ["output-mismatch"]
    assert run["properties"]["failOn"] == "error"

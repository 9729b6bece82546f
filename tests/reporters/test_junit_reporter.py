"""JUnit XML: one suite per subject, counts that match the cases, failures that name the rule."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from exportcheck.reporters.junit import render_junit
from exportcheck.results.report import Report

COUNTS = ("tests", "failures", "errors", "skipped")


def parse(report: Report) -> ET.Element:
    root = ET.fromstring(render_junit(report).encode())
    assert root.tag == "testsuites"
    return root


def suites(report: Report) -> dict[str, ET.Element]:
    return {suite.get("name"): suite for suite in parse(report).findall("testsuite")}


def cases(suite: ET.Element) -> dict[str, ET.Element]:
    return {case.get("name"): case for case in suite.findall("testcase")}


def test_counts_match_cases_on_every_suite_and_in_total(sample_report: Report) -> None:
    root = parse(sample_report)
    totals = dict.fromkeys(COUNTS, 0)
    for suite in root.findall("testsuite"):
        found = {
            "tests": len(suite.findall("testcase")),
            "failures": len(suite.findall("testcase/failure")),
            "errors": len(suite.findall("testcase/error")),
            "skipped": len(suite.findall("testcase/skipped")),
        }
        assert {key: int(suite.get(key)) for key in COUNTS} == found
        for key in COUNTS:
            totals[key] += found[key]
        for case in suite.findall("testcase"):
            assert case.get("classname") == suite.get("name")
    assert {key: int(root.get(key)) for key in COUNTS} == totals


def test_clean_subject_has_one_passing_case(samples: dict[str, Report]) -> None:
    (suite,) = parse(samples["clean"]).findall("testsuite")
    assert suite.get("name") == "models/encoder.onnx"
    (case,) = suite.findall("testcase")
    assert case.get("name") == "exportcheck"
    assert list(case) == []


def test_empty_report_is_an_empty_testsuites(samples: dict[str, Report]) -> None:
    root = parse(samples["empty"])
    assert root.findall("testsuite") == []
    assert root.get("tests") == "0"


def test_failing_finding_carries_rule_message_and_location(samples: dict[str, Report]) -> None:
    suite = suites(samples["findings"])["models/encoder.onnx"]
    failure = cases(suite)["training-dropout encoder.dropout"].find("failure")
    assert failure is not None
    assert failure.get("type") == "training-dropout"
    assert failure.get("message").startswith("Dropout runs in training mode")
    for line in (
        "code: EC101",
        "severity: error",
        "module: encoder.dropout",
        "node: /encoder/dropout/Dropout",
    ):
        assert line in failure.text


def test_audit_finding_of_a_target_gets_its_own_suite(samples: dict[str, Report]) -> None:
    suite = suites(samples["findings"])["train.py:build"]
    case = cases(suite)["submodule-left-training encoder.dropout"]
    assert case.find("failure").get("type") == "submodule-left-training"


def test_suppressed_finding_is_skipped_with_its_reason(samples: dict[str, Report]) -> None:
    suite = suites(samples["findings"])["models/encoder.onnx"]
    skipped = cases(suite)["training-batchnorm encoder.bn"].find("skipped")
    assert skipped.get("message") == "suppressed: known issue | tracked in #12"


def test_findings_below_fail_on_pass_with_system_out(samples: dict[str, Report]) -> None:
    suite = suites(samples["findings"])["models/encoder.onnx"]
    case = cases(suite)["random-op noise"]
    assert case.find("failure") is None and case.find("skipped") is None
    assert "severity: warning" in case.find("system-out").text
    assert suite.get("failures") == "1"


def test_fail_on_threshold_moves_findings_into_failures(samples: dict[str, Report]) -> None:
    report = samples["findings"]
    strict = suites(report.with_fail_on("info"))["models/encoder.onnx"]
    assert strict.get("failures") == "3"
    assert cases(strict)["noop-dropout /head/Dropout"].find("failure") is not None
    lenient = parse(report.with_fail_on("never"))
    assert lenient.get("failures") == "0"
    assert lenient.get("skipped") == "1"


def test_comparisons_fail_with_metrics_in_message(samples: dict[str, Report]) -> None:
    suite = suites(samples["comparisons"])["models/encoder.onnx"]
    by_name = cases(suite)
    assert by_name["onnx onnxruntime/cpu logits"].find("failure") is None
    failed = by_name["onnx (batch 4) onnxruntime/CUDA/cuda/disable_all logits"].find("failure")
    assert failed.get("type") == "output-mismatch"
    assert "max_abs=0.5" in failed.get("message")
    assert "mismatched=40/64" in failed.get("message")
    assert "rtol=0.0001" in failed.get("message")
    shape = by_name["torchscript-trace onnxruntime/cpu hidden"].find("failure")
    assert "shape=(2, 16) expected (2, 32)" in shape.get("message")
    # two failed comparisons and the output-mismatch finding
    assert suite.get("failures") == "3"


def test_input_errors_and_skipped_steps(samples: dict[str, Report]) -> None:
    by_subject = suites(samples["skipped_and_errors"])
    error = cases(by_subject["broken.onnx"])["input"].find("error")
    assert error.get("type") == "UnreadableArtifactError"
    assert "protobuf" in error.get("message")
    # a subject known only from its input error still gets a suite
    assert by_subject["missing.pt"].get("errors") == "1"
    skipped = cases(by_subject["models/encoder.onnx"])
    assert (
        skipped["skipped compare models/encoder.onnx on cuda"].find("skipped").get("message")
        == "no CUDA device"
    )
    assert by_subject["models/encoder.onnx"].get("skipped") == "2"


def test_control_characters_do_not_break_the_xml(samples: dict[str, Report]) -> None:
    text = render_junit(samples["odd_paths"])
    assert "\x01" not in text
    suite = suites(samples["odd_paths"])["my dir/we:ird.onnx"]
    failure = cases(suite)["training-dropout x|y"].find("failure")
    assert "<here>" in failure.get("message")

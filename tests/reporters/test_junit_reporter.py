"""JUnit XML: one suite per subject, one case per problem, counts that match, and a file the
Jenkins xunit schema accepts."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from exportcheck.reporters.junit import CLEAN_CASE, render_junit
from exportcheck.results.findings import Location
from exportcheck.results.report import Report
from exportcheck.rules import RandomOp
from tests.reporters.conftest import RULES, SHARED_SCHEMAS, TAGGER

COUNTS = ("tests", "failures", "errors", "skipped")
XSD = SHARED_SCHEMAS / "jenkins-junit-10.xsd"


@pytest.fixture(scope="module")
def junit_schema():  # noqa: ANN201 - an xmlschema.XMLSchema
    if not XSD.is_file():
        pytest.skip(f"the Jenkins JUnit schema is not at {XSD} (checkout outside shared/)")
    xmlschema = pytest.importorskip("xmlschema")
    return xmlschema.XMLSchema(str(XSD))


def parse(report: Report) -> ET.Element:
    root = ET.fromstring(render_junit(report).encode())
    assert root.tag == "testsuites"
    return root


def suites(report: Report) -> dict[str, ET.Element]:
    return {suite.get("name"): suite for suite in parse(report).findall("testsuite")}


def cases(suite: ET.Element) -> dict[str, ET.Element]:
    return {case.get("name"): case for case in suite.findall("testcase")}


def test_valid_against_the_jenkins_schema(sample_report: Report, junit_schema) -> None:  # noqa: ANN001
    junit_schema.validate(render_junit(sample_report))


def test_counts_match_cases_and_names_are_unique(sample_report: Report) -> None:
    root = parse(sample_report)
    totals = dict.fromkeys(("tests", "failures", "errors"), 0)
    for suite in root.findall("testsuite"):
        found = suite.findall("testcase")
        names = [case.get("name") for case in found]
        assert len(names) == len(set(names))
        counted = {
            "tests": len(found),
            "failures": sum(1 for case in found if case.find("failure") is not None),
            "errors": sum(1 for case in found if case.find("error") is not None),
            "skipped": sum(1 for case in found if case.find("skipped") is not None),
        }
        assert {key: int(suite.get(key)) for key in COUNTS} == counted
        for key in totals:
            totals[key] += counted[key]
        for case in found:
            assert case.get("classname") == suite.get("name")
    assert root.get("skipped") is None
    assert {key: int(root.get(key)) for key in totals} == totals


def test_one_case_per_problem(samples: dict[str, Report]) -> None:
    report = samples["grouped"]
    by_subject = suites(report)
    tagger = cases(by_subject[TAGGER])
    assert list(tagger) == ["EC101 training-dropout [head]"]
    failure = tagger["EC101 training-dropout [head]"].find("failure")
    assert failure.get("type") == "training-dropout"
    assert failure.text.startswith("models/tagger.py:14: Dropout runs in training mode")
    assert "outputs differ by up to 0.36" in failure.text
    assert "- EC211 nondeterministic-eval" in failure.text
    assert "FAIL onnx on onnxruntime/CPU/cpu/disable_all logits@batch4" in failure.text
    assert list(cases(by_subject["models/odd.py:build"])) == ["EC301 output-mismatch"]


def test_clean_subject_has_one_passing_case(samples: dict[str, Report]) -> None:
    (suite,) = parse(samples["clean"]).findall("testsuite")
    assert suite.get("name") == "models/encoder.onnx"
    (case,) = suite.findall("testcase")
    assert case.get("name") == CLEAN_CASE
    assert list(case) == []
    clean = cases(suites(samples["grouped"])["models/clean.py:build"])
    assert clean[CLEAN_CASE].find("system-out").text == "1 of 1 comparison(s) passed\n"


def test_empty_report_is_an_empty_testsuites(samples: dict[str, Report]) -> None:
    root = parse(samples["empty"])
    assert root.findall("testsuite") == []
    assert root.get("tests") == "0"


def test_suppressed_problem_is_skipped_with_its_reason(samples: dict[str, Report]) -> None:
    suite = suites(samples["findings"])["models/encoder.onnx"]
    skipped = cases(suite)["EC102 training-batchnorm [encoder.bn]"].find("skipped")
    assert skipped.get("message") == "suppressed: known issue | tracked in #12"


def test_warnings_below_fail_on_pass_with_system_out(samples: dict[str, Report]) -> None:
    suite = suites(samples["findings"])["models/encoder.onnx"]
    case = cases(suite)["EC103 random-op"]
    assert case.find("failure") is None and case.find("skipped") is None
    assert "RandomNormalLike" in case.find("system-out").text
    assert suite.get("failures") == "1"


def test_fail_on_threshold_moves_problems_into_failures(samples: dict[str, Report]) -> None:
    report = samples["findings"]
    strict = suites(report.with_fail_on("info"))["models/encoder.onnx"]
    assert strict.get("failures") == "3"
    lenient = parse(report.with_fail_on("never"))
    assert lenient.get("failures") == "0"


def test_repeated_names_are_numbered() -> None:
    findings = tuple(
        RandomOp.finding(f"random op {i}", "m.onnx", Location(artifact="m.onnx", node="same"))
        for i in range(2)
    ) + (RandomOp.finding("other", "m.onnx", Location(artifact="m.onnx", node="other")),)
    names = list(
        cases(suites(Report(subjects=("m.onnx",), findings=findings, rules=RULES))["m.onnx"])
    )
    assert names == ["EC103 random-op", "EC103 random-op #2", CLEAN_CASE]


def test_input_errors_and_skipped_steps(samples: dict[str, Report]) -> None:
    by_subject = suites(samples["skipped_and_errors"])
    error = cases(by_subject["broken.onnx"])["input"].find("error")
    assert error.get("type") == "UnreadableArtifactError"
    assert "protobuf" in error.get("message")
    assert by_subject["missing.pt"].get("errors") == "1"
    out = by_subject["models/encoder.onnx"].find("system-out").text
    assert "skipped compare models/encoder.onnx: no CUDA device" in out


def test_control_characters_and_undecodable_bytes_keep_the_xml_well_formed(junit_schema) -> None:  # noqa: ANN001
    name = "we\udcffird\x01.onnx"
    finding = RandomOp.finding("bad \x1b char", name, Location(artifact=name, node="n"))
    text = render_junit(Report(subjects=(name,), findings=(finding,), rules=RULES))
    text.encode("utf-8")
    assert "\x01" not in text and "we\\xffird" in text
    junit_schema.validate(text)

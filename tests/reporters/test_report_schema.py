"""The JSON report's schema: a valid 2020-12 schema that matches what Report.to_dict() writes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import exportcheck
from exportcheck.reporters.json_format import render_json
from exportcheck.results.report import Report

SCHEMA_PATH = Path(exportcheck.__file__).parent / "schemas" / "report.schema.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_json_report_validates(
    validator: jsonschema.Draft202012Validator, sample_report: Report
) -> None:
    validator.validate(json.loads(render_json(sample_report)))


def test_schema_covers_every_key_and_nothing_else(
    validator: jsonschema.Draft202012Validator, samples: dict[str, Report]
) -> None:
    schema = validator.schema
    data = samples["comparisons"].to_dict()
    assert set(schema["required"]) == set(schema["properties"]) == set(data)
    defs = schema["$defs"]
    assert set(defs["comparison"]["required"]) == set(data["comparisons"][0])
    assert set(defs["metrics"]["required"]) == set(data["comparisons"][0]["metrics"])
    assert set(defs["tolerance"]["required"]) == set(data["comparisons"][0]["tolerance"])
    finding = samples["findings"].to_dict()["findings"][3]
    # `fix` and `trace` come only with a localization (tests/localization validates them).
    assert set(defs["finding"]["properties"]) - {"fix", "trace"} == set(finding)
    assert set(defs["location"]["required"]) == set(finding["location"])
    errors = samples["skipped_and_errors"].to_dict()
    assert set(defs["skipped"]["required"]) == set(errors["skipped"][0])
    assert set(defs["inputProblem"]["required"]) == set(errors["errors"][0])


def _mutations() -> list[tuple[str, Any]]:
    def extra_key(d: dict[str, Any]) -> None:
        d["surprise"] = 1

    def bad_severity(d: dict[str, Any]) -> None:
        d["findings"][0]["severity"] = "fatal"

    def missing_location(d: dict[str, Any]) -> None:
        del d["findings"][0]["location"]

    def bad_fail_on(d: dict[str, Any]) -> None:
        d["fail_on"] = "critical"

    def extra_summary_key(d: dict[str, Any]) -> None:
        d["summary"]["fatal"] = 0

    def extra_location_key(d: dict[str, Any]) -> None:
        d["findings"][0]["location"]["line"] = 3

    return [
        ("extra_key", extra_key),
        ("bad_severity", bad_severity),
        ("missing_location", missing_location),
        ("bad_fail_on", bad_fail_on),
        ("extra_summary_key", extra_summary_key),
        ("extra_location_key", extra_location_key),
    ]


@pytest.mark.parametrize(("name", "mutate"), _mutations(), ids=[m[0] for m in _mutations()])
def test_schema_rejects_other_shapes(
    validator: jsonschema.Draft202012Validator,
    samples: dict[str, Report],
    name: str,
    mutate: Any,
) -> None:
    data = copy.deepcopy(samples["findings"].to_dict())
    validator.validate(data)
    mutate(data)
    assert not validator.is_valid(data), name


def test_large_report_is_compact_and_says_the_same(
    validator: jsonschema.Draft202012Validator, sample_report: Report
) -> None:
    """Past INDENT_LIMIT findings the report is written without whitespace; only layout changes."""
    from dataclasses import replace

    from exportcheck.reporters.json_format import INDENT_LIMIT
    from tests.reporters.conftest import TRAINING_DROPOUT

    large = replace(sample_report, findings=(TRAINING_DROPOUT,) * (INDENT_LIMIT + 1))
    text = render_json(large)
    assert text == json.dumps(large.to_dict(), separators=(",", ":")) + "\n"
    validator.validate(json.loads(text))
    small = render_json(sample_report)
    assert small == json.dumps(sample_report.to_dict(), indent=2) + "\n"


@pytest.mark.parametrize("compact", [False, True], ids=["indented", "compact"])
def test_undecodable_bytes_are_written_out_and_other_text_kept(
    validator: jsonschema.Draft202012Validator, compact: bool
) -> None:
    """A name decoded with surrogateescape gets its bytes as `\\xNN`; a character beyond the
    BMP (which json writes as a surrogate pair) stays itself, in small and large reports."""
    from exportcheck.reporters.json_format import INDENT_LIMIT
    from exportcheck.results.findings import Location
    from exportcheck.rules import RandomOp

    name = "we\udcffird\U0001f600.onnx"
    count = INDENT_LIMIT + 1 if compact else 1
    findings = tuple(
        RandomOp.finding("random", name, Location(artifact=name, node=f"n{i}\udc80"))
        for i in range(count)
    )
    text = render_json(Report(subjects=(name,), findings=findings))
    text.encode("utf-8")
    data = json.loads(text)
    validator.validate(data)
    assert data["subjects"] == ["we\\xffird\U0001f600.onnx"]
    assert data["findings"][0]["location"]["node"] == "n0\\x80"


def test_text_without_surrogates_is_dumped_as_it_is() -> None:
    from exportcheck.reporters.escaping import dumps_valid

    data = {"name": "a\\ud800 written out, not a surrogate", "emoji": "\U0001f600"}
    assert json.loads(dumps_valid(data)) == data

"""The runtime matrix in every report: verdicts derived from the comparisons and findings,
compact in text and Markdown, whole in JSON (valid against the schema, and read back)."""

from __future__ import annotations

import json

import jsonschema

from exportcheck.reporters.json_format import render_json
from exportcheck.reporters.markdown import render_markdown
from exportcheck.reporters.text import render_text
from exportcheck.results.findings import Location
from exportcheck.results.report import Report
from exportcheck.results.runtimes import RuntimeRun
from exportcheck.results.serialized import report_from_dict
from exportcheck.rules import RuntimeBatchStatistics, RuntimeRefusal, rule_descriptors
from tests.reporters.conftest import comparison, metrics
from tests.reporters.test_report_schema import SCHEMA_PATH

SUBJECT = "head.py:build"
REFUSAL = "Training mode is not supported for Dropout op"


def run(fmt: str, configuration: str, status: str = "ran", detail: str | None = None):
    return RuntimeRun(
        SUBJECT,
        f"{fmt}: head.onnx (temporary)",
        fmt,
        configuration.split("/")[0],
        configuration,
        status,
        detail,
        "v1",
        ("batch=3",) if status == "ran" else (),
    )


def measured(output: str, max_abs: float, configuration: str, fmt: str = "onnx"):
    runtime, *rest = configuration.split("/")
    extra = {"provider": "CPUExecutionProvider"} if runtime == "onnxruntime" else {}
    if runtime == "openvino":
        extra = {"provider": rest[0]}
    return comparison(
        output,
        metrics(max_abs, mismatched=5 if max_abs > 1e-3 else 0),
        subject=SUBJECT,
        artifact=f"{fmt}: head.onnx (temporary)",
        artifact_format=fmt,
        runtime=runtime,
        optimization=rest[-1] if runtime == "onnxruntime" else None,
        **extra,
    )


def matrix_report() -> Report:
    runs = (
        run("onnx", "onnxruntime/CPU/cpu/disable_all"),
        run("onnx", "onnxruntime/CPU/cpu/default"),
        run("onnx", "openvino/CPU/cpu"),
        run("onnx", "tract/cpu", "refused", f"{REFUSAL} (node x)"),
    )
    comparisons = (
        measured("logits", 0.4, "onnxruntime/CPU/cpu/disable_all"),
        measured("logits", 1e-7, "onnxruntime/CPU/cpu/default"),
        measured("logits", 1e-7, "openvino/CPU/cpu"),
    )
    findings = (
        RuntimeRefusal.finding(
            f"tract refuses this artifact (onnx on tract/cpu): {REFUSAL} (node x)",
            SUBJECT,
            Location(artifact=runs[0].artifact, runtime="onnx on tract/cpu"),
        ),
        RuntimeBatchStatistics.finding(
            "onnx on openvino/CPU/cpu computes batch statistics",
            SUBJECT,
            Location(artifact=runs[0].artifact, runtime="onnx on openvino/CPU/cpu"),
        ),
    )
    return Report(
        subjects=(SUBJECT,),
        findings=findings,
        comparisons=comparisons,
        runtime_runs=runs,
        rules=rule_descriptors(),
    )


def test_verdicts_come_from_the_comparisons_and_findings():
    cells = {c.run.configuration: c for c in matrix_report().runtime_matrix}
    assert cells["onnxruntime/CPU/cpu/disable_all"].verdict == "differs"
    assert cells["onnxruntime/CPU/cpu/disable_all"].max_abs == 0.4
    assert cells["onnxruntime/CPU/cpu/default"].verdict == "matches"
    assert cells["openvino/CPU/cpu"].shown == "matches (batch stats)"
    assert cells["tract/cpu"].verdict == "refuses"


def test_text_shows_one_row_per_artifact_and_each_refusal():
    text = render_text(matrix_report(), width=None)
    assert "    runtimes  onnxruntime  openvino               tract" in text
    assert "    onnx      differs      matches (batch stats)  refuses" in text
    assert f"    tract (onnx): {REFUSAL} (node x)" in text


def test_text_says_it_in_one_line_when_every_run_matches():
    report = matrix_report()
    clean = Report(
        subjects=report.subjects,
        comparisons=report.comparisons[1:],
        runtime_runs=report.runtime_runs[1:3],
        rules=report.rules,
    )
    assert "    runtimes: all 2 configuration(s) match on onnxruntime, openvino\n" in render_text(
        clean, width=None
    )


def test_markdown_has_the_matrix_table():
    text = render_markdown(matrix_report())
    assert "### Runtimes" in text
    assert "| `head.py:build` | `onnx` | differs | matches (batch stats) | refuses |" in text
    assert f"- `tract` (onnx): {REFUSAL} (node x)" in text


def test_json_holds_the_matrix_whole_and_reads_back():
    data = json.loads(render_json(matrix_report()))
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator(schema).validate(data)
    cell = data["runtimes"][3]
    assert set(schema["$defs"]["runtimeCell"]["required"]) == set(cell)
    assert (cell["status"], cell["verdict"], cell["detail"]) == (
        "refused",
        "refuses",
        f"{REFUSAL} (node x)",
    )
    again = report_from_dict(data, root="/")
    assert again.runtime_runs == matrix_report().runtime_runs
    assert [c.verdict for c in again.runtime_matrix] == [c["verdict"] for c in data["runtimes"]]

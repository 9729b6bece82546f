"""Markdown summary: a headline that counts failed subjects, one escaped row per problem, a
capped table, and a size far below GitHub's job-summary limit."""

from __future__ import annotations

from dataclasses import replace

from exportcheck.reporters.markdown import MAX_ROWS, render_markdown
from exportcheck.results.findings import Location
from exportcheck.results.report import Report, merge_reports
from exportcheck.rules import RandomOp
from tests.reporters.conftest import RULES, SAMPLES

JOB_SUMMARY_LIMIT = 1024 * 1024


def test_clean_report_passes_without_tables(samples: dict[str, Report]) -> None:
    text = render_markdown(samples["clean"])
    assert text.startswith("## exportcheck\n")
    assert "**Passed**: 0 of 1 subject(s) failed; 0 error(s), 0 warning(s), 0 info" in text
    assert "|" not in text


def test_headline_counts_the_subjects_that_failed(samples: dict[str, Report]) -> None:
    text = render_markdown(samples["grouped"])
    assert "**Failed**: 3 of 4 subject(s) failed; 3 error(s), 0 warning(s), 0 info" in text
    assert "4 of 5 comparison(s) failed" in text


def test_one_row_per_problem_with_location_and_evidence(samples: dict[str, Report]) -> None:
    text = render_markdown(samples["grouped"])
    assert "| Severity | Rule | Subject | Location | Module | Cause | Evidence |" in text
    rows = [line for line in text.splitlines() if line.startswith("| error |")]
    assert len(rows) == 3
    assert rows[0].startswith(
        "| error | EC101 `training-dropout` | `models/tagger.py:build` | `models/tagger.py:14` "
        "| `head` | Dropout runs in training mode | 2 artifacts, 2 runtimes, outputs differ by "
        "up to 0.36"
    )
    assert "no finding explains it" in rows[2]


def test_suppressed_rows_come_last_with_their_reason(samples: dict[str, Report]) -> None:
    text = render_markdown(samples["findings"])
    rows = [line for line in text.splitlines() if line.startswith("| ")][1:]
    assert rows[-1].startswith("| error (suppressed) | EC102 `training-batchnorm` |")
    assert "statistics \\| training\\_mode=1" in rows[-1]
    assert "_(suppressed: known issue \\| tracked in #12)_" in rows[-1]


def test_every_table_row_has_the_header_cell_count(sample_report: Report) -> None:
    table: list[str] = []
    for line in render_markdown(sample_report).splitlines() + [""]:
        if line.startswith("|"):
            table.append(line)
            continue
        if table:
            width = table[0].count(" | ")
            for row in table:
                assert row.replace("\\|", "").count(" | ") == width, row
            table = []


def test_pipes_backticks_html_and_control_characters_are_escaped(
    samples: dict[str, Report],
) -> None:
    text = render_markdown(samples["odd_paths"])
    row = next(line for line in text.splitlines() if "`training-dropout`" in line)
    assert "`x\\|y`" in row
    assert "\\`backticks\\` \\<here\\> \\*stars\\*" in row
    assert "\x01" not in text and "control \\\\x01 char" in text


def test_problem_table_is_capped() -> None:
    findings = tuple(
        RandomOp.finding(f"random op {i}", "m.onnx", Location(artifact="m.onnx", node=f"r{i}"))
        for i in range(MAX_ROWS + 10)
    )
    report = Report(subjects=("m.onnx",), findings=findings, rules=RULES, fail_on="warning")
    text = render_markdown(report)
    assert len([line for line in text.splitlines() if line.startswith("| warning |")]) == MAX_ROWS
    assert "_... and 10 more_" in text and "**Failed**" in text


def test_a_fifty_model_zoo_stays_far_below_the_job_summary_limit() -> None:
    grouped = SAMPLES["grouped"]
    zoo = merge_reports(
        replace(
            grouped,
            subjects=tuple(f"zoo/{i}/{s}" for s in grouped.subjects),
            findings=tuple(f.with_subject(f"zoo/{i}/{f.subject}") for f in grouped.findings),
            comparisons=tuple(
                replace(c, subject=f"zoo/{i}/{c.subject}") for c in grouped.comparisons
            ),
        )
        for i in range(13)  # 52 models
    )
    text = render_markdown(zoo)
    assert len(zoo.subjects) >= 50 and "**Failed**: 39 of 52" in text
    assert len(text.encode()) < JOB_SUMMARY_LIMIT / 20


def test_skipped_steps_and_input_errors(samples: dict[str, Report]) -> None:
    text = render_markdown(samples["skipped_and_errors"])
    assert "**Error**:" in text
    assert "### Skipped" in text
    assert "- `models/encoder.onnx`: compare (models/encoder.onnx) on cuda: no CUDA device" in text
    assert "### Input errors" in text
    assert (
        "- `broken.onnx`: not an ONNX model (protobuf parse failed) (UnreadableArtifactError)"
        in text
    )
    assert "- entry #3 for `random-op` matched nothing" in text

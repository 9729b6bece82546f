"""Markdown summary: verdict line, escaped table rows, a capped table, failed comparisons."""

from __future__ import annotations

from exportcheck.reporters.markdown import MAX_ROWS, render_markdown
from exportcheck.results.report import Report


def test_clean_report_passes_without_tables(samples: dict[str, Report]) -> None:
    text = render_markdown(samples["clean"])
    assert text.startswith("## exportcheck\n")
    assert "**Passed**: 1 subject(s); 0 error(s), 0 warning(s), 0 info" in text
    assert "|" not in text


def test_findings_table_rows(samples: dict[str, Report]) -> None:
    text = render_markdown(samples["findings"])
    assert "**Failed**: 2 subject(s); 2 error(s), 1 warning(s), 1 info, 1 suppressed" in text
    assert "| Severity | Rule | Subject | Module | Message |" in text
    assert (
        "| error | `training-dropout` EC101 | `models/encoder.onnx` | `encoder.dropout` | "
        "Dropout runs in training mode (training\\_mode is constant true, from initializer) |"
    ) in text
    assert "| warning | `random-op` EC103 | `models/encoder.onnx` | - |" in text
    # suppressed rows come last, with the pipes of message and reason escaped
    rows = [line for line in text.splitlines() if line.startswith("| ")][1:]
    assert rows[-1].startswith("| error (suppressed) | `training-batchnorm` EC102 |")
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


def test_pipes_backticks_and_html_are_escaped(samples: dict[str, Report]) -> None:
    text = render_markdown(samples["odd_paths"])
    row = next(line for line in text.splitlines() if "`training-dropout`" in line)
    assert "`x\\|y`" in row
    assert "\\`backticks\\` \\<here\\> \\*stars\\*" in row
    assert "\x01" not in text


def test_findings_table_is_capped(samples: dict[str, Report]) -> None:
    text = render_markdown(samples["many"])
    rows = [line for line in text.splitlines() if line.startswith("| warning |")]
    assert len(rows) == MAX_ROWS
    assert "_... and 10 more_" in text
    assert "**Failed**" in text


def test_failed_comparisons_table_and_passed_count(samples: dict[str, Report]) -> None:
    text = render_markdown(samples["comparisons"])
    assert "3 comparison(s), 2 failed" in text
    assert "| Subject | Artifact | Runtime | Output |" in text
    assert (
        "| `models/encoder.onnx` | onnx (batch 4) | onnxruntime/CUDA/cuda/disable\\_all | "
        "`logits` | 0.5 | 5 | 40/64 | rtol=0.0001 atol=1e-05 |"
    ) in text
    assert "| 0/64; shape (2, 16), expected (2, 32) |" in text
    assert "1 of 3 comparison(s) passed." in text
    assert "onnxruntime/cpu | `logits`" not in text  # passed comparisons only counted


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

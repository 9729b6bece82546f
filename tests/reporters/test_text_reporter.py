"""Text report: one block per problem at its source line, wrapped to the width, a verdict."""

from __future__ import annotations

import pytest

from exportcheck.reporters import render
from exportcheck.reporters.text import render_text
from exportcheck.results.catalogue import UNEXPLAINED_FIX
from exportcheck.results.findings import Location
from exportcheck.results.report import Report
from exportcheck.rules import TrainingDropout
from tests.reporters.conftest import RULES, SAMPLES


def test_problem_block_reads_like_ruff() -> None:
    lines = render_text(SAMPLES["grouped"]).splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("models/tagger.py:14:"))
    assert lines[first].startswith(
        "models/tagger.py:14: error: EC101 training-dropout [head] Dropout runs in training mode"
    )
    assert lines[first + 1].startswith(
        "    evidence: 2 artifacts, 2 runtimes, outputs differ by up to 0.36, two runs by up to 0.25"
    )
    assert lines[first + 3].startswith("    fix: Call `model.eval()`")
    assert sum("training-dropout" in line for line in lines) == 1


def test_unexplained_mismatch_says_so_and_is_not_told_to_fix_a_cause_it_lacks() -> None:
    lines = render_text(SAMPLES["grouped"], width=None).splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("models/odd.py: error: EC301"))
    assert lines[at + 1] == (
        "    evidence: no finding explains it; 1 artifact, 1 runtime, outputs differ by up to 0.01"
    )
    assert lines[at + 2] == (
        "    fix: No mode problem accounts for the difference: if it is numerical noise of the "
        "runtime, widen `--rtol/--atol` for that output, with a reason; otherwise the exporter "
        "or the runtime computes the operation differently, which is worth reporting with the "
        "artifact."
    )


def test_verdict_counts_failed_subjects_and_hints_explain() -> None:
    lines = render_text(SAMPLES["grouped"], width=200).splitlines()
    assert lines[-2].startswith("failed: 3 of 4 subject(s) failed; 3 error(s), 0 warning(s)")
    assert lines[-1] == (
        "see: exportcheck explain EC101, exportcheck explain EC201, exportcheck explain EC301"
    )
    assert "models/clean.py:build: ok" in lines


def test_clean_report_opens_with_its_verdict() -> None:
    text = render_text(SAMPLES["clean"])
    assert text.splitlines() == [
        "models/encoder.onnx: ok",
        "passed: 0 of 1 subject(s) failed; 0 error(s), 0 warning(s) (fail on: error)",
    ]


@pytest.mark.parametrize("width", [60, 80, 100])
def test_every_line_fits_the_width(sample_report: Report, width: int) -> None:
    for verbose in (False, True):
        text = render(sample_report, "text", width=width, verbose=verbose)
        assert max(len(line) for line in text.splitlines()) <= width, text


def test_verbose_lists_evidence_and_every_comparison() -> None:
    report = SAMPLES["grouped"]
    plain, verbose = render_text(report), render_text(report, verbose=True)
    assert "comparisons:" not in plain and "comparisons:" in verbose
    section = verbose.split("comparisons:\n", 1)[1].split("\n\n", 1)[0]
    listed = [line for line in section.splitlines() if not line.startswith("    ")]
    assert len(listed) == len(report.comparisons)
    assert "models/clean.py:build: ok onnx on onnxruntime/cpu logits" in section
    assert "- EC211 nondeterministic-eval" in verbose and "EC211" not in plain


def test_info_is_hidden_unless_asked() -> None:
    note = TrainingDropout.finding("note", "m.onnx", Location(module="head"))
    from dataclasses import replace

    from exportcheck.results.findings import Severity

    report = Report(
        subjects=("m.onnx",), findings=(replace(note, severity=Severity.INFO),), rules=RULES
    )
    assert "note" not in render_text(report)
    assert "1 info hidden (training-dropout; verbose" in render_text(report)
    assert "EC101" in render_text(report, verbose=True)
    assert "EC101" in render_text(replace(report, fail_on="info"))


def test_control_characters_and_undecodable_bytes_are_escaped() -> None:
    finding = TrainingDropout.finding(
        "bell \x07 and \x1b[2J clear", "we\udcffird.onnx", Location(module="a\x1b]0;title\x07")
    )
    text = render_text(Report(subjects=("we\udcffird.onnx",), findings=(finding,), rules=RULES))
    assert "\x1b" not in text and "\x07" not in text and "\\x1b[2J" in text
    assert "we\\xffird.onnx" in text
    text.encode("utf-8")


@pytest.mark.parametrize("width", [None, 0])
def test_no_width_means_no_wrapping(width: int | None) -> None:
    report = SAMPLES["grouped"]
    text = render(report, "text", width=width, verbose=True)
    lines = text.splitlines()
    assert max(len(line) for line in lines) > 100
    headline = next(line for line in lines if line.startswith("models/tagger.py:14:"))
    assert headline.endswith("Dropout runs in training mode")
    fix = next(line for line in lines if line.startswith("    fix: "))
    assert fix.endswith("to every functional dropout call.")
    assert all(line == line.rstrip() for line in lines)
    # the same lines as a wide wrap, joined
    assert render(report, "text", width=10_000, verbose=True) == text


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_every_fix_line_is_a_whole_sentence(rule) -> None:
    from exportcheck.reporters.text import ABBREVIATIONS, doc_section, fix_hint

    report = Report(rules=RULES)
    fix = fix_hint(report, rule.slug)
    assert fix and fix.endswith(".") and fix[0].isupper(), fix
    assert not fix.lower().endswith(ABBREVIATIONS), fix
    assert doc_section(rule.doc, "How to fix").startswith(fix)


@pytest.mark.parametrize(
    "rule", [r for r in RULES if UNEXPLAINED_FIX in r.doc], ids=lambda r: r.code
)
def test_every_unexplained_fix_line_is_a_whole_sentence_of_its_own(rule) -> None:
    from exportcheck.reporters.text import ABBREVIATIONS, doc_section, fix_hint

    report = Report(rules=RULES)
    fix = fix_hint(report, rule.slug, explained=False)
    assert fix and fix.endswith(".") and fix[0].isupper(), fix
    assert not fix.lower().endswith(ABBREVIATIONS), fix
    assert doc_section(rule.doc, UNEXPLAINED_FIX).startswith(fix)
    assert fix != fix_hint(report, rule.slug)
    assert rule.stage == "compare", "only a consequence can lack an explaining cause"


def test_consequences_whose_fix_names_a_cause_say_what_to_do_without_one() -> None:
    consequences = {r.slug for r in RULES if UNEXPLAINED_FIX in r.doc}
    assert consequences == {
        "output-mismatch",
        "runtime-batch-statistics",
        "runtime-nondeterminism",
        "runtime-refusal",
    }


def test_fix_line_keeps_an_example_after_e_g() -> None:
    from exportcheck.reporters.text import first_sentence

    assert first_sentence("Gate it, e.g. `F.dropout(x)`. Then export.") == (
        "Gate it, e.g. `F.dropout(x)`."
    )
    assert first_sentence("Use i.e. This works. Next.") == "Use i.e. This works."
    assert first_sentence("One sentence only") == "One sentence only"
    report = SAMPLES["grouped"]
    verbose = render_text(report, verbose=True, width=None)
    assert "EC211" in verbose
    hint = next(r for r in RULES if r.code == "EC211")
    from exportcheck.reporters.text import fix_hint

    assert fix_hint(report, hint.slug).endswith("`F.dropout(x, p, training=self.training)`.")

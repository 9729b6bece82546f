"""Problems: findings grouped by root cause; severity, exit code and suppression on problems."""

from __future__ import annotations

from dataclasses import replace

from exportcheck.reporters.text import render_text
from exportcheck.results.findings import Location, Severity
from exportcheck.results.report import Report
from exportcheck.rules import RuntimeRefusal
from exportcheck.settings.config import IgnoreEntry, Settings
from exportcheck.settings.policy import apply_policy
from tests.reporters.conftest import ROOT, RULES, SAMPLES, TAGGER


def grouped() -> Report:
    return SAMPLES["grouped"]


def test_one_problem_per_cause_with_its_evidence() -> None:
    report = grouped()
    tagger = [p for p in report.problems if p.subject == TAGGER]
    assert len(tagger) == 1
    (problem,) = tagger
    assert (problem.rule, problem.module) == ("training-dropout", "head")
    assert problem.source == (f"{ROOT}/models/tagger.py", 14)
    assert {f.rule for f in problem.evidence} == {
        "training-dropout",
        "nondeterministic-eval",
        "runtime-nondeterminism",
        "output-mismatch",
    }
    assert len(problem.artifacts) == 2 and len(problem.runtimes) == 2
    assert problem.worst("compare") == 0.36 and problem.worst("repeat") == 0.25
    assert sorted(problem.finding_indices) == [0, 1, 2, 3, 4, 5]


def test_module_left_training_explains_what_is_found_at_it() -> None:
    (problem,) = [p for p in grouped().problems if p.subject == "models/frozen.py:build"]
    assert problem.rule == "submodule-left-training"
    assert [f.rule for f in problem.evidence] == ["training-module"]


def test_a_mismatch_nothing_explains_is_its_own_problem() -> None:
    (problem,) = [p for p in grouped().problems if p.subject == "models/odd.py:build"]
    assert problem.rule == "output-mismatch" and not problem.explained
    assert problem.worst() == 0.01 and problem.to_dict(ROOT)["explained"] is False


def test_a_runtime_that_refuses_two_artifacts_counts_once() -> None:
    """A finding's runner label names the artifact format too (`onnx on tract/cpu`); the
    problem's runtimes are the configurations, its artifacts the files."""
    subject = "models/volume.py:build"
    refusals = tuple(
        RuntimeRefusal.finding(
            f"tract refuses this artifact ({fmt} on tract/cpu): Operator can not be made a TypedOp",
            subject,
            Location(artifact=f"{fmt}: volume{suffix} (temporary)", runtime=f"{fmt} on tract/cpu"),
        )
        for fmt, suffix in (("onnx", ".onnx"), ("onnx-legacy", ".legacy.onnx"))
    )
    (problem,) = Report(subjects=(subject,), findings=refusals, rules=RULES).problems
    assert not problem.explained
    assert problem.runtimes == ("tract/cpu",) and len(problem.artifacts) == 2
    assert problem.to_dict(ROOT)["runtimes"] == ["tract/cpu"]
    assert (
        render_text(Report(subjects=(subject,), findings=refusals, rules=RULES)).count(
            "evidence: no finding explains it; 2 artifacts, 1 runtime\n"
        )
        == 1
    )


def test_exit_code_and_counts_come_from_problems() -> None:
    report = grouped()
    assert report.exit_code() == 1
    assert report.problem_counts() == {"error": 3, "warning": 0, "info": 0}
    assert report.failed_subjects() == (TAGGER, "models/frozen.py:build", "models/odd.py:build")


def test_severity_is_the_worst_active_member() -> None:
    report = grouped()
    findings = tuple(
        replace(f, severity=Severity.WARNING) if f.rule == "training-dropout" else f
        for f in report.findings
    )
    (problem,) = [p for p in replace(report, findings=findings).problems if p.subject == TAGGER]
    assert problem.rule == "training-dropout"
    assert problem.severity is Severity.ERROR  # the mismatches it explains are errors


def test_suppressing_the_cause_covers_its_evidence() -> None:
    entry = IgnoreEntry(0, "training-dropout", "MC dropout, reviewed", subject="models/tagger.py:*")
    settings = Settings(ignore=(entry,))
    judged = apply_policy(grouped(), settings)
    (problem,) = [p for p in judged.problems if p.subject == TAGGER]
    assert problem.suppressed is not None and problem.suppressed.reason == "MC dropout, reviewed"
    assert all(f.suppressed is not None for f in judged.findings if f.subject == TAGGER)
    assert judged.unused_suppressions == ()
    assert TAGGER not in judged.failed_subjects()


def test_suppressing_evidence_alone_leaves_the_problem() -> None:
    entry = IgnoreEntry(0, "output-mismatch", "known", subject="models/tagger.py:*")
    judged = apply_policy(grouped(), Settings(ignore=(entry,)))
    (problem,) = [p for p in judged.problems if p.subject == TAGGER]
    assert problem.suppressed is None and TAGGER in judged.failed_subjects()


def test_fingerprints_ignore_the_root_folder_and_temporary_names() -> None:
    report = grouped()
    moved = replace(
        report,
        root="/elsewhere/checkout",
        findings=tuple(
            replace(
                f,
                location=replace(
                    f.location,
                    artifact=(f.location.artifact or "").replace("1a2b3c4d", "ffff0000") or None,
                    source_file=f.location.source_file.replace(ROOT, "/elsewhere/checkout")
                    if f.location.source_file
                    else None,
                ),
            )
            for f in report.findings
        ),
    )
    before = [p.fingerprint(report.root) for p in report.problems]
    after = [p.fingerprint(moved.root) for p in moved.problems]
    assert before == after and len(set(before)) == len(before)


def test_to_dict_shows_sources_relative_to_the_root() -> None:
    data = grouped().to_dict()
    first = data["problems"][0]
    assert first["source_file"] == "models/tagger.py" and first["source_line"] == 14
    assert data["summary"]["problems"] == {"error": 3, "warning": 0, "info": 0, "suppressed": 0}


def test_to_dict_shows_no_absolute_path() -> None:
    data = grouped().to_dict()
    sources = [f["location"]["source_file"] for f in data["findings"]]
    assert "models/tagger.py" in sources
    assert "torch/nn/modules/linear.py" in sources
    shown = [p["source_file"] for p in data["problems"]]
    assert shown == ["models/tagger.py", "torch/nn/modules/linear.py", None]
    assert not any(s.startswith("/") for s in sources + shown if s)


def test_a_refusal_that_names_a_flagged_node_is_evidence_of_that_nodes_finding() -> None:
    """Batch statistics would be the likelier cause of a refusal that names no Dropout; the
    node the refusal names is the one a training-dropout finding flags, so that finding is."""
    from exportcheck.rules import TrainingBatchNorm, TrainingDropout

    subject, artifact = "models/net.py:build", "onnx-legacy: net.legacy.onnx (temporary)"

    def at(node: str, **where) -> Location:
        return Location(artifact=artifact, node=node, **where)

    findings = (
        TrainingBatchNorm.finding("BatchNormalization has training_mode=1", subject, at("/bn/BN")),
        TrainingDropout.finding("Dropout has training_mode=1", subject, at("/head/Gate")),
        RuntimeRefusal.finding(
            "X refuses this artifact (onnx-legacy on x/cpu): unsupported gate",
            subject,
            at("/head/Gate", runtime="onnx-legacy on x/cpu"),
        ),
    )
    problems = Report(subjects=(subject,), findings=findings, rules=RULES).problems
    (dropout,) = [p for p in problems if p.rule == "training-dropout"]
    assert [f.rule for f in dropout.evidence] == ["runtime-refusal"]
    unplaced = replace(findings[2], location=replace(findings[2].location, node=None))
    problems = Report(subjects=(subject,), findings=(*findings[:2], unplaced), rules=RULES).problems
    (batchnorm,) = [p for p in problems if p.rule == "training-batchnorm"]
    assert [f.rule for f in batchnorm.evidence] == ["runtime-refusal"]

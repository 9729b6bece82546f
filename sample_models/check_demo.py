"""Checks a `validate sample_models` JSON report against each sample's EXPECTED declaration,
and that every error-level problem of a known-bad model names its source file and line.

Usage: python sample_models/check_demo.py REPORT.json EXIT_CODE
"""

from __future__ import annotations

import ast
import json
import os
import sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))


def declared(path: str) -> dict:
    """The EXPECTED literal of a sample file, read without importing it."""
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "EXPECTED" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise SystemExit(f"{path}: no EXPECTED declaration")


def problems(report: dict) -> list[str]:
    found: dict[str, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for finding in report["findings"]:
        if finding["severity"] == "error" and "suppressed" not in finding:
            found[finding["subject"]][finding["rule"]].add(finding["location"]["module"])
    failures = [f"{e['subject']}: input error: {e['message']}" for e in report["errors"]]
    failures += _unplaced_problems(report)
    failures += runtime_failures(report)
    for subject in report["subjects"]:
        path = subject.rsplit(":", 1)[0]
        expected = declared(path)["validate"]
        rules = found[subject]
        if set(rules) != set(expected):
            failures.append(
                f"{subject}: expected error rules {sorted(expected)}, got {sorted(rules)}"
            )
        for rule, modules in expected.items():
            missing = set(modules) - rules.get(rule, set())
            if missing:
                failures.append(f"{subject}: {rule} did not name module(s) {sorted(missing)}")
    return failures


def runtime_failures(report: dict) -> list[str]:
    """Each installed runtime as the samples declare it: a known-bad model's problem holds
    the runtime's finding (OpenVINO's refusal of a training Dropout); a clean model matches
    on every runtime except where its declaration quotes a runtime's own refusal."""
    failures = []
    for subject in report["subjects"]:
        declaration = declared(subject.rsplit(":", 1)[0])
        wanted = declaration.get("runtimes", {})
        cells = [c for c in report.get("runtimes", []) if c["subject"] == subject]
        for runtime in dict.fromkeys(c["runtime"] for c in cells):
            mine = [c for c in cells if c["runtime"] == runtime]
            if declaration["validate"]:
                rule = wanted.get(runtime)
                if rule and not _problem_holds(report, subject, runtime, rule):
                    failures.append(f"{subject}: no error problem holds {runtime}'s {rule}")
                continue
            refusal = wanted.get(runtime)
            for cell in mine:
                expected_refusal = refusal and refusal in (cell["detail"] or "")
                if cell["verdict"] != "matches" and not expected_refusal:
                    failures.append(
                        f"{subject}: {cell['format']} {cell['verdict']} on "
                        f"{cell['configuration']}: {cell['detail'] or ''}"
                    )
    return failures


def _problem_holds(report: dict, subject: str, runtime: str, rule: str) -> bool:
    for problem in report["problems"]:
        if problem["subject"] != subject or problem["severity"] != "error":
            continue
        for index in problem["findings"]:
            finding = report["findings"][index]
            if finding["rule"] == rule and f" on {runtime}/" in (
                finding["location"]["runtime"] or ""
            ):
                return True
    return False


def _unplaced_problems(report: dict) -> list[str]:
    """Error problems without a source file and line, or that nothing explains."""
    failures = []
    for problem in report["problems"]:
        if problem["severity"] == "error" and "suppressed" not in problem:
            if not (problem["source_file"] and problem["source_line"]):
                failures.append(
                    f"{problem['subject']}: problem {problem['rule']} at {problem['module']} "
                    "names no source file and line"
                )
            if not problem["explained"]:
                failures.append(f"{problem['subject']}: unexplained {problem['rule']}")
    return failures


def main(argv: list[str]) -> int:
    with open(argv[1], encoding="utf-8") as handle:
        report = json.load(handle)
    exit_code = int(argv[2]) if len(argv) > 2 else report["exit_code"]
    failures = problems(report)
    any_bad = any(declared(s.rsplit(":", 1)[0])["validate"] for s in report["subjects"])
    if exit_code != (1 if any_bad else 0):
        failures.append(f"exit code {exit_code}, expected {1 if any_bad else 0}")
    if failures:
        print("demo: the report does not match the sample models' declarations:")
        for line in failures:
            print(f"  - {line}")
        return 1
    print(
        f"demo: all {len(report['subjects'])} sample models behaved as declared "
        f"(clean ones pass, known-bad ones flagged with their rules and modules); "
        f"exportcheck exited {exit_code} as expected"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

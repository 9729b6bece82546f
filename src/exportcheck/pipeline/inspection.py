"""Static inspection: read artifact files, run the graph rules, return a Report."""

from __future__ import annotations

import os
from collections.abc import Iterable

from exportcheck.errors import InputError, NotAnArtifactError
from exportcheck.graph_checks import inspect_artifact
from exportcheck.readers import ARTIFACT_SUFFIXES
from exportcheck.results.findings import Finding
from exportcheck.results.report import InputProblem, Report, Skipped, input_problem
from exportcheck.rules import graph_rules, rule_descriptors

PathLike = str | os.PathLike[str]


def collect_artifacts(paths: Iterable[PathLike]) -> tuple[list[str], list[InputProblem]]:
    """Expands directories (recursively, by suffix) and reports paths that give nothing."""
    files: list[str] = []
    problems: list[InputProblem] = []
    for raw in paths:
        path = os.fspath(raw)
        if os.path.isdir(path):
            found = []
            for root, dirs, names in os.walk(path):
                dirs.sort()
                found.extend(
                    os.path.join(root, name)
                    for name in sorted(names)
                    if os.path.splitext(name)[1].lower() in ARTIFACT_SUFFIXES
                )
            if not found:
                suffixes = ", ".join(sorted(ARTIFACT_SUFFIXES))
                problems.append(
                    InputProblem(path, f"no model files ({suffixes}) in this directory")
                )
            files.extend(found)
        elif os.path.exists(path):
            files.append(path)
        else:
            problems.append(InputProblem(path, "no such file or directory"))
    return files, problems


def inspect(
    paths: PathLike | Iterable[PathLike],
    *,
    fail_on: str = "error",
    only_artifacts: bool = False,
) -> Report:
    """Inspects files or directories; unreadable ones become report errors, the rest go on.

    With `only_artifacts` (a pre-commit hook, which picks files by suffix), a file that is not
    an export artifact at all (a TypeScript `.ts`, a torch.save checkpoint) is passed over with
    a note instead of failing; a damaged artifact still fails."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files, problems = collect_artifacts(paths)
    rules = graph_rules()
    findings: list[Finding] = []
    passed_over: list[Skipped] = []
    for path in files:
        try:
            findings.extend(inspect_artifact(path, rules=rules))
        except NotAnArtifactError as error:
            if only_artifacts:
                reason = f"not an export artifact: {error.message}"
                passed_over.append(Skipped(subject=path, step="inspect", reason=reason))
            else:
                problems.append(input_problem(path, error))
        except InputError as error:
            problems.append(input_problem(path, error))
    skipped_paths = {skip.subject for skip in passed_over}
    return Report(
        subjects=tuple(p for p in files if p not in skipped_paths),
        findings=tuple(findings),
        errors=tuple(problems),
        skipped=tuple(passed_over),
        fail_on=fail_on,
        rules=rule_descriptors(),
    )

"""Problems: a report's findings grouped by root cause, each with the evidence it explains.

A problem is one cause (a rule at a module, with the source line responsible where known) and
what it explains: the same static finding in every other artifact, the probes and audit
findings at the same module, and the numerical findings (`output-mismatch`,
`runtime-nondeterminism`, `nonfinite-output`) of the artifacts it affects, with their failing
comparisons. A numerical finding that no cause explains is a problem of its own.

Grouping is derived from the findings alone, like a comparison's verdict from its metrics, so
a saved or hand-built report groups the same way.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from exportcheck.results.findings import Finding, Severity, Suppression
from exportcheck.results.runtimes import runner_label, runtime_configuration

if TYPE_CHECKING:  # a report without comparisons (a static inspection) need not load them
    from exportcheck.results.comparison import Comparison

CONSEQUENCE_STAGE = "compare"
"""The stage of the findings that measure an artifact: consequences, not causes."""

LEFT_TRAINING = "submodule-left-training"
"""A module `model.eval()` did not reach: it explains every finding at or below it."""

RANDOM_RULES = frozenset(
    {"training-dropout", "random-op", "dynamic-dropout-mode", "nondeterministic-eval"}
)
"""Causes that make outputs change from run to run."""

STATISTICS_RULES = frozenset(
    {"training-batchnorm", "batch-dependent-eval", "stale-batchnorm-stats"}
)
"""Causes that change outputs the same way on every run (batch statistics)."""

LOCALIZED = "first-divergence"
"""Where an artifact first computes something else: a cause only where no mode finding is."""

_STAGE_ORDER = {"audit": 0, "inspect": 1, "probe": 2, "localize": 3}
_LIBRARY_MARKERS = ("/site-packages/", "/dist-packages/")


@dataclass(frozen=True)
class Problem:
    """One root cause and the findings and failing comparisons it explains.

    `findings` and `comparisons` are indices into the report's tuples, cause first; `cause`
    is the finding that names the problem. `explained` is False for a numerical finding
    nothing else accounts for.
    """

    cause: Finding
    evidence: tuple[Finding, ...]
    comparisons: tuple[Comparison, ...]
    finding_indices: tuple[int, ...]
    comparison_indices: tuple[int, ...]
    explained: bool = True

    @property
    def rule(self) -> str:
        return self.cause.rule

    @property
    def code(self) -> str:
        return self.cause.code

    @property
    def subject(self) -> str:
        return self.cause.subject

    @property
    def module(self) -> str | None:
        return self.cause.location.module

    @property
    def members(self) -> tuple[Finding, ...]:
        return (self.cause, *self.evidence)

    @property
    def suppressed(self) -> Suppression | None:
        return self.cause.suppressed

    @property
    def severity(self) -> Severity:
        """The most severe finding it holds that was not accepted on its own."""
        if not self.evidence:  # most problems are one finding: 10k of them in a large graph
            return self.cause.severity
        active = [f.severity for f in self.members if f.suppressed is None]
        return max(active) if active else self.cause.severity

    @property
    def source(self) -> tuple[str | None, int | None]:
        """The responsible Python code: the first project file among the findings, else the
        first file at all (a library class, for a stock module left training)."""
        if not self.evidence:
            location = self.cause.location
            if location.source_file:
                return location.source_file, location.source_line
            return None, None
        located = [
            (f.location.source_file, f.location.source_line)
            for f in self.members
            if f.location.source_file
        ]
        for path, line in located:
            if not any(marker in path.replace("\\", "/") for marker in _LIBRARY_MARKERS):
                return path, line
        return located[0] if located else (None, None)

    @property
    def artifacts(self) -> tuple[str, ...]:
        if not self.evidence:
            artifact = self.cause.location.artifact
            return (artifact,) if artifact else ()
        return tuple(
            dict.fromkeys(f.location.artifact for f in self.members if f.location.artifact)
        )

    @property
    def runtimes(self) -> tuple[str, ...]:
        """The runtime configurations its measurements ran in (`tract/cpu`), each once, however
        many artifacts ran there: those `artifacts` counts."""
        if not self.evidence:
            cause = self.cause
            runtime = cause.location.runtime
            if runtime and cause.stage == CONSEQUENCE_STAGE:
                return (runtime_configuration(runtime),)
            return ()
        labels = [f.location.runtime for f in self.members if f.stage == CONSEQUENCE_STAGE]
        return tuple(dict.fromkeys(runtime_configuration(label) for label in labels if label))

    def worst(self, run: str = "compare") -> float | None:
        """The largest difference among its failing comparisons of one kind (`compare`:
        against the eval-mode model; `repeat`: two runs of the same artifact)."""
        if not self.comparisons:
            return None
        values = [
            c.metrics.max_abs
            for c in self.comparisons
            if c.run == run and c.metrics.max_abs is not None
        ]
        return max(values) if values else None

    def worst_text(self, run: str = "compare") -> str | None:
        """`worst`, with its figure relative to the magnitude of that comparison's reference
        output: `120 (relative 1.6e-06 to the magnitude 7.5e+07)`."""
        from exportcheck.results.comparison import largest_difference

        return largest_difference(c for c in self.comparisons if c.run == run)

    def fingerprint(self, root: str | None, cwd: str | None = None) -> str:
        """Stable across runs, machines, working folders and temporary folders: rule, subject
        and module, and the source file by its project-relative (or library-relative) path; no
        line, which moves with unrelated edits, and no artifact, whose name is temporary."""
        return self._fingerprint(root, cwd, self.source[0])

    def _fingerprint(self, root: str | None, cwd: str | None, source: str | None) -> str:
        cause = self.cause
        parts = (
            cause.rule,
            stable_subject(cause.subject, root, cwd),
            cause.location.module or "",
            stable_path(source, root, cwd) if source else "",
            "" if self.explained else "unexplained",
        )
        import hashlib  # OpenSSL's load is 7 ms of every start; only reports of problems need it

        return hashlib.sha256("\x00".join(parts).encode("utf-8", "replace")).hexdigest()[:32]

    def to_dict(self, root: str | None = None, cwd: str | None = None) -> dict[str, Any]:
        source, line = self.source
        cause = self.cause
        data: dict[str, Any] = {
            "rule": cause.rule,
            "code": cause.code,
            "severity": self.severity.label,
            "subject": cause.subject,
            "module": cause.location.module,
            "message": cause.message,
            "explained": self.explained,
            "source_file": shown_path(source, root, cwd) if source else None,
            "source_line": line if source else None,
            "artifacts": [shown_artifact(a, root, cwd) for a in self.artifacts],
            "runtimes": list(self.runtimes),
            "max_abs": self.worst("compare"),
            "max_abs_between_runs": self.worst("repeat"),
            "findings": list(self.finding_indices),
            "comparisons": list(self.comparison_indices),
            "fingerprint": self._fingerprint(root, cwd, source),
        }
        if cause.suppressed is not None:
            data["suppressed"] = {
                "reason": cause.suppressed.reason,
                "entry": cause.suppressed.entry,
            }
        return data


OUTSIDE = "<outside>"
"""What stands for the folders of a file outside the root and every installed package."""

_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")
_FILE_TARGET = re.compile(r"^(?P<file>.+\.py):(?P<attr>[A-Za-z_][\w.]*)$")
_MODULE_TARGET = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_][\w.]*$")


def repository_root(start: str | None = None) -> str:
    """The folder report paths are relative to: the nearest folder holding `.git` (a folder, or
    the file of a worktree or submodule) from `start` (the working directory) upwards, else
    `start` itself. No `git` process: a pipeline step should not need git installed."""
    here = os.path.abspath(start or os.getcwd())
    folder = here
    while True:
        if os.path.exists(os.path.join(folder, ".git")):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return here
        folder = parent


_is_absolute_root = lru_cache(maxsize=64)(os.path.isabs)


def _absolute(root: str | None) -> str | None:
    """The root as the cached functions below take it: a relative one read from the working
    folder now. Every path a report shows asks, with the same root: its answer is cached."""
    return os.path.abspath(root) if root and not _is_absolute_root(root) else root


def shown_path(path: str, root: str | None, cwd: str | None = None) -> str:
    """A path as a report shows it: never absolute, with forward slashes.

    - code of an installed package: relative to its `site-packages` (or `dist-packages`, or
      this interpreter's purelib/platlib) folder, `torch/nn/modules/linear.py`, wherever the
      environment lives (inside the root too: a `.venv` in the checkout);
    - a file under the root: relative to it. A relative path is read from `cwd` (the run's
      working directory) when that lies inside the root, so `tagger.py` given in `models/`
      shows as `models/tagger.py`;
    - anything else (a temporary folder, another checkout, another drive): `<outside>/name`,
      since the folders above it (a home directory, a runner's workspace) tell a reader
      nothing the name does not, and may tell more than the team wants published.
    """
    return _shown_path(path, _absolute(root), cwd)


@lru_cache(maxsize=4096)
def _shown_path(path: str, root: str | None, cwd: str | None) -> str:
    # A report names the same few files thousands of times, and relpath costs 15 us.
    library = library_relative(path)
    if library is not None:
        return library
    normal = path.replace("\\", "/")
    if _is_absolute(path):
        # Only a path absolute here can be under the root: `C:\\x` on Linux is another machine's.
        relative = _relative(path, root) if root and os.path.isabs(path) else None
        return relative if relative is not None else _outside(normal)
    prefix = _relative(cwd, root) if cwd and root and os.path.isabs(cwd) else None
    joined = posixpath.normpath(posixpath.join(prefix, normal) if prefix else normal)
    if joined == ".." or joined.startswith("../"):
        return _outside(normal)
    return joined


def shown_artifact(name: str, root: str | None, cwd: str | None = None) -> str:
    """An artifact as a report shows it: a path given absolutely as `shown_path` shows it;
    other names are labels (`onnx: tagger.onnx (temporary)`) and stay as they are."""
    return _shown_artifact(name, _absolute(root), cwd)


@lru_cache(maxsize=4096)
def _shown_artifact(name: str, root: str | None, cwd: str | None) -> str:
    # Every finding of a file names its artifact: 42k times in a 1M-node graph's report.
    return _shown_path(name, root, cwd) if _is_absolute(name) else name


def library_relative(path: str) -> str | None:
    """An installed package's file relative to the folder it is installed in, else None."""
    normal = path.replace("\\", "/")
    for marker in _LIBRARY_MARKERS:
        if marker in normal:
            return normal.rsplit(marker, 1)[1]
    if os.path.isabs(path):
        for folder in _library_folders():
            relative = _relative(path, folder)
            if relative is not None and relative != ".":
                return relative
    return None


@lru_cache(maxsize=1)
def _library_folders() -> tuple[str, ...]:
    import site
    import sysconfig

    paths = sysconfig.get_paths()
    folders = [paths.get("purelib"), paths.get("platlib")]
    getsitepackages = getattr(site, "getsitepackages", None)  # missing in some virtualenvs
    if getsitepackages is not None:
        folders += getsitepackages()
    return tuple(dict.fromkeys(os.path.abspath(f) for f in folders if f))


def _is_absolute(path: str) -> bool:
    return os.path.isabs(path) or bool(_DRIVE.match(path)) or path.startswith(("/", "\\"))


def _outside(normal: str) -> str:
    name = normal.rstrip("/").rsplit("/", 1)[-1]
    return f"{OUTSIDE}/{name}"


def _relative(path: str, root: str) -> str | None:
    try:
        relative = os.path.relpath(path, root)
    except ValueError:  # another drive on Windows
        return None
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        return None
    return "" if relative == os.curdir else relative.replace(os.sep, "/")


def stable_path(path: str, root: str | None, cwd: str | None = None) -> str:
    """A path that reads the same on every machine, for fingerprints: the shown path, with the
    file name alone for a file outside the root (a temporary file)."""
    return shown_path(path, root, cwd).removeprefix(OUTSIDE + "/")


def stable_subject(subject: str, root: str | None, cwd: str | None = None) -> str:
    """A subject as it reads on every machine and from every working folder: the file of a
    `file.py:build` target or an artifact as `stable_path`; a `package.module:build` target as
    it is (it names no file)."""
    return _stable_subject(subject, _absolute(root), cwd)


@lru_cache(maxsize=4096)
def _stable_subject(subject: str, root: str | None, cwd: str | None) -> str:
    # Every problem's fingerprint reads its subject, and a report has few subjects.
    file_target = _FILE_TARGET.match(subject)
    if file_target is not None:
        return f"{stable_path(file_target['file'], root, cwd)}:{file_target['attr']}"
    if _MODULE_TARGET.match(subject):
        return subject
    return stable_path(subject, root, cwd)


def _group_key(finding: Finding, anchors: Sequence[str]) -> tuple[str, ...]:
    """Which cause a non-numerical finding belongs to: the module left training above it,
    else its module, else its source line, else the rule at its node."""
    loc = finding.location
    if loc.module:
        for anchor in anchors:
            if loc.module == anchor or loc.module.startswith(anchor + "."):
                return ("module", anchor)
        return ("module", loc.module)
    if loc.source_file and loc.source_line:
        return ("source", finding.rule, loc.source_file, str(loc.source_line))
    return ("node", finding.rule, loc.scope or "", loc.node or loc.op_type or "")


def _join_unplaced(
    groups: dict[tuple[str, tuple[str, ...]], _Group], findings: Sequence[Finding]
) -> None:
    """A finding with neither module nor source line (the legacy exporter's copy of an
    `F.dropout` in the top-level `forward`) joins the one placed cause of its rule in the same
    subject: it is the same bug seen in another artifact. With two or more such causes, which
    one it is cannot be told, and it stays a problem of its own."""
    for key in [k for k in groups if k[1][0] == "node"]:
        subject, rule = key[0], key[1][1]
        placed = [
            k
            for k in groups
            if k[0] == subject
            and k[1][0] == "source"
            and k[1][1] == rule
            and not any(findings[i].location.module for i in groups[k].indices)
        ]
        if len(placed) == 1:
            groups[placed[0]].indices.extend(groups.pop(key).indices)


def _cause_order(indexed: tuple[int, Finding]) -> tuple[int, int, int]:
    """Which finding names a problem: the earliest stage (audit, then graph, then probe), and
    not a note. A severity override does not move it, so a suppression keeps matching."""
    index, finding = indexed
    return (finding.severity <= Severity.INFO, _STAGE_ORDER.get(finding.stage, 4), index)


@dataclass
class _Group:
    indices: list[int]
    comparisons: list[int]


def explaining_cause(
    consequence: Finding, causes: Sequence[Finding], *, unstable: bool
) -> Finding | None:
    """The likeliest of the given causes for a numerical finding: randomness for outputs that
    change between runs; batch statistics, then any other mode cause, for outputs that differ
    the same way each run; the artifact's own findings before the whole model's. The artifact
    check and the grouping both ask this."""
    candidates = [
        c
        for c in causes
        if c.subject == consequence.subject
        and c.severity >= Severity.WARNING
        and c.location.artifact in (consequence.location.artifact, None)
    ]
    if not candidates:
        return None
    wants_random = (
        unstable
        or consequence.rule == "runtime-nondeterminism"
        # a runtime's refusal names the operator it refuses
        or (consequence.rule == "runtime-refusal" and "dropout" in consequence.message.lower())
    )

    def rank(item: tuple[int, Finding]) -> tuple[int, int, int]:
        index, cause = item
        if wants_random:
            kind = 0 if cause.rule in RANDOM_RULES else 1
        else:
            kind = 0 if cause.rule in STATISTICS_RULES else 2 if cause.rule in RANDOM_RULES else 1
        if cause.rule == LOCALIZED:
            kind = 3
        local = cause.location.artifact == consequence.location.artifact
        node = consequence.location.node
        if local and node is not None and cause.location.node == node:
            kind = -1  # the node a runtime's refusal names is the node the cause flagged
        return (kind, 0 if local else 1, index)

    return min(enumerate(candidates), key=rank)[1]


def _runner_key(comparison: Comparison) -> tuple[str, str | None, str]:
    """The subject, artifact and runner label (`onnx on onnxruntime/CPU/cpu/disable_all`) a
    numerical finding names in `location.runtime`."""
    label = runner_label(comparison.artifact_format, comparison.configuration)
    return (comparison.subject, comparison.artifact, label)


def _linked_comparisons(
    finding: Finding, failing: dict[tuple[str, str | None, str], list[tuple[int, Comparison]]]
) -> list[int]:
    """The failing comparisons behind a numerical finding."""
    key = (finding.subject, finding.location.artifact, finding.location.runtime or "")
    runs = failing.get(key, [])
    if finding.rule == "runtime-nondeterminism":
        return [i for i, c in runs if c.run == "repeat"]
    if finding.rule == "nonfinite-output":
        return [
            i
            for i, c in runs
            if c.run != "repeat"
            and c.output == finding.location.output
            and c.metrics.nonfinite > c.metrics.expected_nonfinite
        ]
    return [i for i, c in runs if c.run != "repeat"]


def group_problems(
    findings: Sequence[Finding], comparisons: Sequence[Comparison] = ()
) -> tuple[Problem, ...]:
    """The problems of a report, in the order their causes first appear."""
    failing: dict[tuple[str, str | None, str], list[tuple[int, Comparison]]] = {}
    for index, comparison in enumerate(comparisons):
        if not comparison.passed:
            failing.setdefault(_runner_key(comparison), []).append((index, comparison))

    anchors: dict[str, list[str]] = {}
    for finding in findings:
        if finding.rule == LEFT_TRAINING and finding.location.module:
            anchors.setdefault(finding.subject, []).append(finding.location.module)

    groups: dict[tuple[str, tuple[str, ...]], _Group] = {}
    consequences: list[int] = []
    for index, finding in enumerate(findings):
        if finding.stage == CONSEQUENCE_STAGE:
            consequences.append(index)
            continue
        key = (finding.subject, _group_key(finding, anchors.get(finding.subject, ())))
        groups.setdefault(key, _Group([], [])).indices.append(index)

    _join_unplaced(groups, findings)
    by_subject: dict[str, list[_Group]] = {}
    for (subject, _), group in groups.items():
        by_subject.setdefault(subject, []).append(group)

    unstable = {
        (f.subject, f.location.artifact, f.location.runtime)
        for f in findings
        if f.rule == "runtime-nondeterminism"
    }
    unexplained: dict[tuple[str, str], _Group] = {}
    consequence_set = set(consequences)
    for index in consequences:
        finding = findings[index]
        candidates = by_subject.get(finding.subject, [])
        is_unstable = (
            finding.subject,
            finding.location.artifact,
            finding.location.runtime,
        ) in unstable
        best_cause = explaining_cause(
            finding,
            [findings[i] for g in candidates for i in g.indices if i not in consequence_set],
            unstable=is_unstable,
        )
        if best_cause is not None:
            group = next(g for g in candidates if any(findings[i] is best_cause for i in g.indices))
        else:
            group = unexplained.setdefault((finding.subject, finding.rule), _Group([], []))
        linked = _linked_comparisons(finding, failing)
        group.indices.append(index)
        group.comparisons += linked

    problems = [_problem(findings, comparisons, g, True) for g in groups.values()]
    problems += [_problem(findings, comparisons, g, False) for g in unexplained.values()]
    problems.sort(key=lambda p: min(p.finding_indices))
    return tuple(problems)


def _problem(
    findings: Sequence[Finding], comparisons: Sequence[Comparison], group: _Group, explained: bool
) -> Problem:
    if len(group.indices) == 1:
        index = group.indices[0]
        if not group.comparisons:  # most problems: 42k of them in a 1M-node graph's report
            return Problem(findings[index], (), (), (index,), (), explained)
        ordered = [(index, findings[index])]
    else:
        ordered = sorted(((i, findings[i]) for i in group.indices), key=_cause_order)
    if not explained:
        ordered = sorted(ordered, key=lambda item: item[0])
    indices = tuple(i for i, _ in ordered)
    linked = tuple(dict.fromkeys(group.comparisons)) if group.comparisons else ()
    return Problem(
        cause=ordered[0][1],
        evidence=tuple(f for _, f in ordered[1:]),
        comparisons=tuple(comparisons[i] for i in linked),
        finding_indices=indices,
        comparison_indices=linked,
        explained=explained,
    )

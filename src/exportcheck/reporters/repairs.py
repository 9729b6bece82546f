"""Reporters for `exportcheck fix` (the node-by-node diff and the proof) and for
`exportcheck compare AFTER --against BEFORE` (the mode-relevant changes): text and JSON."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from exportcheck.reporters.escaping import dumps_valid, printable
from exportcheck.results.comparison import relative_text
from exportcheck.results.repair import Action, ModeChangeReport, RepairResult

REPAIR_FORMATS = ("text", "json")
_ORDER = (Action.CHANGED, Action.REFUSED, Action.INTENDED, Action.UNCHANGED)


def render_repair_text(result: RepairResult) -> str:
    lines = [f"fix {printable(result.source)} -> {printable(result.output or '(not written)')}"]
    if result.note:
        lines.append(f"  {printable(result.note)}")
    for action in _ORDER:
        nodes = result.with_action(action)
        if not nodes:
            continue
        lines.append(f"{action.value} ({len(nodes)}):")
        for node in nodes:
            where = f"{node.scope}::{node.node}" if node.scope != "main" else node.node
            module = f" [{node.module}]" if node.module else ""
            lines.append(f"  {node.op} {printable(where)}{printable(module)}")
            lines.append(f"      {printable(node.reason)}")
    lines.append("proof:")
    for step in result.proof:
        mark = "ok  " if step.passed else "FAIL"
        lines.append(f"  {mark} {step.check}: {printable(step.detail)}")
    if result.refused:
        lines.append(
            f"  FAIL {len(result.refused)} node(s) in training mode could not be repaired "
            "soundly (see refused)"
        )
    verdict = "holds" if result.proof_holds else "does not hold"
    lines.append(f"the repair's proof {verdict}")
    return "\n".join(lines) + "\n"


def render_repair_json(result: RepairResult) -> str:
    return dumps_valid(result.to_dict(), indent=2, allow_nan=False) + "\n"


def render_mode_changes_text(report: ModeChangeReport) -> str:
    lines = [f"compare {printable(report.after)} against {printable(report.before)}"]
    if not report.changes:
        lines.append("  no mode-relevant change: every Dropout and batch norm is where it was")
    for change in report.changes:
        where = f"{change.scope}::{change.node}" if change.scope != "main" else change.node
        mark = "BREAKS" if change.breaks else "ok    "
        lines.append(f"  {mark} {change.op} {printable(where)}: {printable(change.change)}")
        lines.append(f"         was {printable(change.before)}; {change.effect.value}")
    if report.note:
        lines.append(f"  {printable(report.note)}")
    for node in report.remaining:
        how = (
            "exportcheck fix repairs it"
            if node.action is Action.CHANGED
            else f"not repairable: {printable(node.reason)}"
        )
        lines.append(
            f"  STILL  {node.op} {printable(node.node)} runs in training mode in AFTER ({how})"
        )
    lines.extend(_outputs("outputs, both with mode bugs repaired", report.comparisons))
    lines.extend(_outputs("outputs as they are", report.raw))
    if report.ok:
        lines.append("AFTER keeps BEFORE's eval-mode semantics")
    else:
        reasons = []
        if any(c.breaks for c in report.changes):
            reasons.append("a change broke what BEFORE computes on purpose")
        if report.remaining:
            reasons.append(f"{len(report.remaining)} node(s) still run in training mode")
        if not report.outputs_match_eval_semantics:
            reasons.append("the outputs differ in eval semantics (or were not measured)")
        lines.append("AFTER is not BEFORE in eval mode: " + "; ".join(reasons))
    return "\n".join(lines) + "\n"


def _outputs(title: str, comparisons: Any) -> list[str]:
    if not comparisons:
        return []
    lines = [f"{title}:"]
    for c in comparisons:
        mark = "ok  " if c.passed else "DIFF"
        worst = c.metrics.max_abs
        shown = "n/a" if worst is None else relative_text(worst, c.metrics.magnitude or 0.0)
        lines.append(f"  {mark} {printable(c.output)} on {c.runtime_label}: max abs {shown}")
    return lines


def render_mode_changes_json(report: ModeChangeReport) -> str:
    return dumps_valid(report.to_dict(), indent=2, allow_nan=False) + "\n"


REPAIR_REPORTERS: dict[str, Callable[[RepairResult], str]] = {
    "text": render_repair_text,
    "json": render_repair_json,
}
MODE_CHANGE_REPORTERS: dict[str, Callable[[ModeChangeReport], str]] = {
    "text": render_mode_changes_text,
    "json": render_mode_changes_json,
}

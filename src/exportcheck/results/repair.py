"""What `exportcheck fix` did to each mode-relevant node, the proof that followed, and what
`compare AFTER --against BEFORE` found changed between two artifacts."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from exportcheck.results.comparison import Comparison
from exportcheck.results.report import Report


class Action(str, enum.Enum):
    """What the repair did with one Dropout or batch norm."""

    CHANGED = "changed"
    UNCHANGED = "unchanged"  # already in inference mode
    INTENDED = "intended"  # training-mode semantics on purpose: left alone and reported
    REFUSED = "refused"  # a mode bug no sound rewrite repairs: left alone, the proof fails

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class NodeRepair:
    """One node's line of the diff: what was done and why."""

    scope: str
    node: str
    op: str
    action: Action
    reason: str
    module: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "node": self.node,
            "op": self.op,
            "action": self.action.value,
            "reason": self.reason,
            "module": self.module,
        }


@dataclass(frozen=True)
class ProofStep:
    """One check of the proof and its outcome; `comparisons` holds the measurements it judged."""

    check: str
    passed: bool
    detail: str
    comparisons: tuple[Comparison, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "passed": self.passed,
            "detail": self.detail,
            "comparisons": [c.to_dict() for c in self.comparisons],
        }


@dataclass(frozen=True)
class RepairResult:
    """The diff of one repaired artifact, where it was written, and the proof."""

    source: str
    output: str | None
    kind: str
    nodes: tuple[NodeRepair, ...]
    proof: tuple[ProofStep, ...] = ()
    note: str = ""
    validation: Report | None = None

    def with_action(self, action: Action) -> tuple[NodeRepair, ...]:
        return tuple(n for n in self.nodes if n.action is action)

    @property
    def changed(self) -> tuple[NodeRepair, ...]:
        return self.with_action(Action.CHANGED)

    @property
    def refused(self) -> tuple[NodeRepair, ...]:
        return self.with_action(Action.REFUSED)

    @property
    def proof_holds(self) -> bool:
        """Every mode bug repaired and every proof step passed (there is at least one)."""
        return not self.refused and bool(self.proof) and all(s.passed for s in self.proof)

    def exit_code(self) -> int:
        return 0 if self.proof_holds else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "output": self.output,
            "kind": self.kind,
            "proof_holds": self.proof_holds,
            "note": self.note,
            "nodes": [n.to_dict() for n in self.nodes],
            "proof": [s.to_dict() for s in self.proof],
        }


class Effect(str, enum.Enum):
    """What a change between two artifacts did to the deployed semantics."""

    TOWARD_EVAL = "moved toward eval semantics"
    BROKE_INTENDED = "broke intended batch statistics"
    KEPT_INTENDED = "kept intended batch statistics: AFTER computes what BEFORE does"
    BROKE_MC_DROPOUT = "removed run-time (MC) dropout"
    AWAY_FROM_EVAL = "moved away from eval semantics"
    NEUTRAL = "no change of mode"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ModeChange:
    """One mode-relevant node of BEFORE that AFTER removed, fused or switched."""

    scope: str
    node: str
    op: str
    before: str
    change: str
    effect: Effect

    @property
    def breaks(self) -> bool:
        return self.effect in (
            Effect.BROKE_INTENDED,
            Effect.BROKE_MC_DROPOUT,
            Effect.AWAY_FROM_EVAL,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "node": self.node,
            "op": self.op,
            "before": self.before,
            "change": self.change,
            "effect": self.effect.value,
            "breaks": self.breaks,
        }


@dataclass(frozen=True)
class ModeChangeReport:
    """`compare AFTER --against BEFORE`: the mode-relevant changes and the outputs measured.

    `comparisons` hold AFTER against BEFORE, both with their mode bugs repaired (eval
    semantics, intended batch statistics kept): equal unless a change altered what the model
    computes in eval mode. `raw` holds AFTER against BEFORE as they are. `remaining` lists
    AFTER's own nodes still in training mode by mistake."""

    after: str
    before: str
    changes: tuple[ModeChange, ...]
    comparisons: tuple[Comparison, ...] = ()
    raw: tuple[Comparison, ...] = ()
    remaining: tuple[NodeRepair, ...] = ()
    note: str = ""

    @property
    def outputs_match_eval_semantics(self) -> bool:
        return bool(self.comparisons) and all(c.passed for c in self.comparisons)

    @property
    def ok(self) -> bool:
        return (
            not any(c.breaks for c in self.changes)
            and not self.remaining
            and self.outputs_match_eval_semantics
        )

    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "after": self.after,
            "before": self.before,
            "ok": self.ok,
            "outputs_match_eval_semantics": self.outputs_match_eval_semantics,
            "note": self.note,
            "changes": [c.to_dict() for c in self.changes],
            "comparisons": [c.to_dict() for c in self.comparisons],
            "raw_comparisons": [c.to_dict() for c in self.raw],
            "remaining": [n.to_dict() for n in self.remaining],
        }

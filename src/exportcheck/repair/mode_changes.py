"""What changed the mode between two ONNX artifacts (BEFORE and AFTER an optimizer, say): each
Dropout and BatchNormalization of BEFORE that AFTER removed, fused or switched, judged by the
repair's own decision on BEFORE; and AFTER's outputs against BEFORE run with its mode bugs
repaired (eval semantics, intended batch statistics kept) and against BEFORE as it is."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from exportcheck.comparison.runtimes import OPTIMIZATION_LEVELS, onnx_runner
from exportcheck.comparison.runtimes.native_paths import runtime_path
from exportcheck.errors import UnsupportedArtifactError
from exportcheck.numerics.metrics import coarser_tolerance, measure
from exportcheck.readers import detect_kind
from exportcheck.readers.onnx import read_onnx
from exportcheck.readers.view import ArtifactKind, NodeView
from exportcheck.repair.onnx_rewrite import (
    MODE_OPS,
    ScopeReads,
    decide,
    is_training,
    repair_onnx,
)
from exportcheck.repair.sample_inputs import onnx_inputs
from exportcheck.results.comparison import Comparison, Tolerance
from exportcheck.results.repair import Action, Effect, ModeChange, ModeChangeReport, NodeRepair

_FUSING_PRODUCERS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
_STATES = {
    Action.CHANGED: "in training mode by mistake",
    Action.INTENDED: "in training mode on purpose",
    Action.UNCHANGED: "in inference mode",
    Action.REFUSED: "in training mode, not provably by mistake",
}


def _effect_of_leaving(action: Action, op: str) -> Effect:
    if action is Action.CHANGED:
        return Effect.TOWARD_EVAL
    if action is Action.INTENDED:
        return Effect.BROKE_MC_DROPOUT if op == "Dropout" else Effect.BROKE_INTENDED
    if action is Action.UNCHANGED:
        return Effect.NEUTRAL
    return Effect.UNKNOWN


def _disappearance(node: NodeView) -> str:
    if node.op == "BatchNormalization" and node.inputs and node.graph is not None:
        producer = node.graph.producer(node.inputs[0], node)
        if producer is not None and producer.op in _FUSING_PRODUCERS:
            return f"disappeared: fused into {producer.op} {producer.name!r}"
    return "disappeared"


def mode_changes(after: str, before: str) -> tuple[ModeChange, ...]:
    """Every mode-relevant node of BEFORE that AFTER lacks or runs in another mode, matched by
    operator and node name."""
    present = {(n.op, n.name): n for n in read_onnx(after, MODE_OPS).nodes}
    changes = []
    for node in read_onnx(before, MODE_OPS).nodes:
        decision = decide(node).repair
        state = _STATES[decision.action]
        if decision.action in (Action.INTENDED, Action.REFUSED):
            state += f" ({decision.reason})"
        counterpart = present.get((node.op, node.name))
        if counterpart is None:
            change, effect = _disappearance(node), _effect_of_leaving(decision.action, node.op)
        else:
            now = decide(counterpart).repair.action
            was_training, is_now = is_training(node), is_training(counterpart)
            if was_training == is_now and (now is Action.INTENDED) == (
                decision.action is Action.INTENDED
            ):
                continue
            if was_training and not is_now:
                change, effect = (
                    "switched to inference mode",
                    _effect_of_leaving(decision.action, node.op),
                )
            elif is_now and not was_training:
                change, effect = "switched to training mode", Effect.AWAY_FROM_EVAL
            else:
                change = f"mode source changed ({decide(counterpart).repair.reason})"
                effect = _effect_of_leaving(decision.action, node.op)
        changes.append(ModeChange(node.scope, node.name, node.op, state, change, effect))
    return tuple(changes)


def runner_comparisons(
    runner: Any,
    actual: list[Any],
    expected: list[Any],
    *,
    subject: str,
    artifact_format: str,
    reference: str,
    run: str,
    tolerance_for: Callable[[str, Any, Any], Tolerance] | None = None,
) -> list[Comparison]:
    """One Comparison per output of a runner's run against the expected values; the tolerance
    is the coarser dtype's default unless `tolerance_for(name, expected, actual)` says."""
    made = []
    names = runner.output_names or [f"output {i}" for i in range(len(actual))]
    for name, got, want in zip(names, actual, expected, strict=False):
        tolerance = (
            tolerance_for(name, want, got)
            if tolerance_for is not None
            else coarser_tolerance(got.dtype, want.dtype)
        )
        made.append(
            Comparison(
                subject=subject,
                artifact=None,
                artifact_format=artifact_format,
                runtime=runner.runtime,
                device=runner.device,
                output=name,
                metrics=measure(got, want, tolerance),
                tolerance=tolerance,
                provider=runner.provider,
                optimization=runner.optimization,
                reference=reference,
                run=run,
            )
        )
    return made


def _repaired_bytes(path: str) -> bytes:
    """The file with its mode bugs repaired, serialized: never written, its external data
    still read from beside the file."""
    model, _ = repair_onnx(path)
    return model.SerializeToString()


def _left_in_training(path: str) -> tuple[NodeRepair, ...]:
    """AFTER's own mode bugs: nodes that still run in training mode, not on purpose."""
    nodes = read_onnx(path, MODE_OPS).nodes
    reads = ScopeReads(nodes)
    lines = [decide(node, reads).repair for node in nodes]
    return tuple(n for n in lines if n.action in (Action.CHANGED, Action.REFUSED))


def _judged_by_outputs(
    changes: tuple[ModeChange, ...], comparisons: Sequence[Comparison]
) -> tuple[ModeChange, ...]:
    """An intended batch norm that disappeared broke its statistics only if AFTER computes
    something else: an optimizer may fold weight standardization (a fixed computation) into a
    constant, or rewrite a decomposition, soundly. The outputs with both files' mode bugs
    repaired (intended statistics kept) decide; without them the static verdict stands."""
    if not comparisons or not all(c.passed for c in comparisons):
        return changes
    return tuple(
        dataclasses.replace(change, effect=Effect.KEPT_INTENDED)
        if change.effect is Effect.BROKE_INTENDED
        else change
        for change in changes
    )


def _run_pair(
    first: str,
    second: str,
    inputs: tuple,
    reference: str,
    run: str,
    serialized: tuple[bytes | None, bytes | None] = (None, None),
) -> list[Comparison]:
    """`first` against `second` at every ORT level; `serialized` holds what to run in place of
    each file's own bytes (its repaired form), its external data read from beside the file."""
    made: list[Comparison] = []
    with runtime_path(first, "onnx") as first_path, runtime_path(second, "onnx") as second_path:
        for level in OPTIMIZATION_LEVELS:
            runner = onnx_runner(first_path, "cpu", level, serialized=serialized[0])
            expected = onnx_runner(second_path, "cpu", level, serialized=serialized[1]).run(inputs)
            made += runner_comparisons(
                runner,
                runner.run(inputs),
                expected,
                subject="compare",
                artifact_format="onnx",
                reference=reference,
                run=run,
            )
    return made


def compare_artifacts(
    after: str, before: str, shapes: Sequence[tuple[tuple[int, ...], str]] = ()
) -> ModeChangeReport:
    """The mode-relevant changes from BEFORE to AFTER, AFTER's own remaining mode bugs, and the
    outputs measured on the CPU at every ONNX Runtime optimization level: both files with their
    mode bugs repaired (equal unless a change altered eval semantics), and both as they are."""
    for path in (after, before):
        if detect_kind(path) is not ArtifactKind.ONNX:
            raise UnsupportedArtifactError(
                "an artifact as the reference works for ONNX files only", subject=path
            )
    changes = mode_changes(after, before)
    remaining = _left_in_training(after)
    inputs = onnx_inputs(before, shapes)
    raw = _run_pair(after, before, inputs, "BEFORE", "raw")
    comparisons = _run_pair(
        after,
        before,
        inputs,
        "BEFORE, both with mode bugs repaired",
        "eval",
        (_repaired_bytes(after), _repaired_bytes(before)),
    )
    return ModeChangeReport(
        after,
        before,
        _judged_by_outputs(changes, comparisons),
        tuple(comparisons),
        tuple(raw),
        remaining,
    )

"""`exportcheck fix`: repair an artifact, then prove the repair.

The proof, every time: the repaired file is inspected again and no training-mode finding may be
left except at nodes the diff reports as intended. With `against` (the model), the repaired
artifact is compared with the eval-mode model on every runtime and optimization level, as
`compare` does. Without it, the repaired artifact must give the same outputs under two random
seeds and one sample's output must not depend on its batch companions; its difference from the
original is reported.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from exportcheck.comparison.reference import Progress, Tolerances, quiet_progress
from exportcheck.comparison.runtimes.native_paths import runtime_path
from exportcheck.graph_checks import inspect_artifact
from exportcheck.results.comparison import Comparison, largest_difference
from exportcheck.results.repair import Action, ModeChangeReport, ProofStep, RepairResult
from exportcheck.rules import DynamicDropoutMode, TrainingBatchNorm, TrainingDropout

__all__ = ["compare_with_artifact", "fix"]

# The rules whose findings say a node still runs in training mode.
TRAINING_RULES = frozenset({TrainingDropout.slug, TrainingBatchNorm.slug, DynamicDropoutMode.slug})
_SEEDS = (0, 1)


def fix(
    artifact: str | os.PathLike[str],
    output: str | os.PathLike[str],
    against: Any = None,
    *,
    example_inputs: Any = None,
    input_shapes: Sequence[str] = (),
    inputs_file: str | None = None,
    devices: str | Sequence[str] | None = "cpu",
    tolerances: Tolerances | None = None,
    progress: Progress | None = None,
) -> RepairResult:
    """Repairs `artifact` into `output` and proves it. `against`: the model, as a target spec
    (`file.py:build`) or a module with `example_inputs`; without it, the proof runs on the
    artifact alone (`example_inputs` or `input_shapes` shape its inputs where it cannot)."""
    from exportcheck.repair import repair_artifact

    if against is not None and not isinstance(against, str) and example_inputs is None:
        from exportcheck.errors import InputSpecError

        raise InputSpecError("a model as against= needs example_inputs=", subject="against")
    say = progress or quiet_progress
    say(f"{os.fspath(artifact)}: repair")
    result = repair_artifact(artifact, output)
    assert result.output is not None
    say(f"{result.output}: inspect again")
    steps = [static_proof(result)]
    if against is not None:
        say(f"{result.output}: compare with the eval-mode model")
        step, report = _against_model(
            result.output, against, example_inputs, input_shapes, inputs_file, devices, tolerances
        )
        return replace(result, proof=(*steps, step), validation=report)
    say(f"{result.output}: prove determinism and batch independence")
    inputs = _own_inputs(result, example_inputs, input_shapes)
    steps += _standalone_proof(result, inputs, tolerances or Tolerances())
    return replace(result, proof=tuple(steps))


def training_rules() -> list[Any]:
    """The graph rules that say a node still runs in training mode: the proof's inspection."""
    from exportcheck.rules import graph_rules

    return [rule for rule in graph_rules() if rule.slug in TRAINING_RULES]


def static_proof(result: RepairResult) -> ProofStep:
    """The proof's first step: the written file inspected again."""
    assert result.output is not None
    intended = {(n.scope, n.node) for n in result.nodes if n.action is Action.INTENDED}
    left = [
        f
        for f in inspect_artifact(result.output, rules=training_rules())
        if f.rule in TRAINING_RULES and (f.location.scope, f.location.node) not in intended
    ]
    kept = len(intended)
    if left:
        shown = "; ".join(f"{f.rule} at {f.location.node}: {f.message}" for f in left[:3])
        return ProofStep("inspect again", False, f"{len(left)} training finding(s) left: {shown}")
    detail = "no training-mode finding left"
    if kept:
        detail += f" ({kept} node(s) left in training mode on purpose, reported as intended)"
    return ProofStep("inspect again", True, detail)


def _against_model(
    path: str,
    against: Any,
    example_inputs: Any,
    input_shapes: Sequence[str],
    inputs_file: str | None,
    devices: str | Sequence[str] | None,
    tolerances: Tolerances | None,
) -> tuple[ProofStep, Any]:
    from exportcheck.pipeline.validation import compare
    from exportcheck.rules import (
        NondeterministicEval,
        NonfiniteOutput,
        OutputMismatch,
        RuntimeNondeterminism,
    )

    if isinstance(against, str):
        from exportcheck.targets.python_targets import build_target

        target = build_target(against, input_shapes, inputs_file)
        model, inputs, label = target.model, target.inputs, f"{path} vs {against}"
    else:
        model, inputs, label = against, example_inputs, path
    report = compare(path, model, inputs, devices, subject=label, tolerances=tolerances)
    numeric = {OutputMismatch.slug, NonfiniteOutput.slug, RuntimeNondeterminism.slug}
    failed = [f for f in report.findings if f.rule in numeric]
    compared = report.comparisons
    runtimes = sorted({c.runtime_label for c in compared})
    random = [f for f in report.findings if f.rule == NondeterministicEval.slug]
    passed = bool(compared) and all(c.passed for c in compared) and not failed and not random
    if random:
        where = f" in `{random[0].location.module}`" if random[0].location.module else ""
        detail = (
            f"the eval-mode model is itself random ({random[0].message}), so no artifact can "
            f"match it: gate the random path{where} on `self.training` "
            "(`F.dropout(x, p, training=self.training)`)"
        )
    elif passed:
        detail = (
            f"{len(compared)} comparison(s) with the eval-mode model pass on {', '.join(runtimes)}"
        )
    elif not compared:
        why = "; ".join(s.reason for s in report.skipped[:2]) or "no runtime could run it"
        detail = f"no comparison ran: {why}"
    else:
        detail = "; ".join(f.message for f in failed[:3]) or "a comparison failed"
    return ProofStep("matches the eval-mode model", passed, detail, tuple(compared)), report


def _own_inputs(result: RepairResult, example_inputs: Any, input_shapes: Sequence[str]) -> tuple:
    from exportcheck.repair.sample_inputs import onnx_inputs, program_inputs
    from exportcheck.targets.python_targets import as_input_tuple, parse_shape

    assert result.output is not None
    if example_inputs is not None:
        return as_input_tuple(example_inputs, result.source)
    shapes = [parse_shape(text) for text in input_shapes]
    if result.kind == "onnx":
        return onnx_inputs(result.output, shapes)
    from exportcheck.comparison.loaders import load_torch_artifact

    return program_inputs(load_torch_artifact(result.output, "exported-program"), shapes)


def _runners(path: str, kind: str, limit: int | None = None) -> list[Any]:
    """The CPU runners of an artifact on the reference runtimes (every ORT optimization level,
    or torch), each session made only when taken. The standalone proof is about the artifact,
    not about how far each other runtime supports it; `--against` runs every runtime."""
    from itertools import islice

    from exportcheck.comparison.artifact_checks import runners_for
    from exportcheck.comparison.runtimes import chosen_runtimes

    reference = chosen_runtimes(["onnxruntime", "torch"])
    made = (a.runner for a in runners_for(path, kind, ["cpu"], runtimes=reference) if a.runner)
    return list(islice(made, limit))


def _seeded_run(runner: Any, inputs: tuple, seed: int) -> list[Any]:
    import torch

    torch.manual_seed(seed)
    if runner.runtime == "onnxruntime":
        from exportcheck.numerics.runtime_imports import onnxruntime

        onnxruntime().set_seed(seed)
    return runner.run(inputs)


def _comparisons(
    runner: Any,
    kind: str,
    actual: list[Any],
    expected: list[Any],
    tolerances: Tolerances,
    reference: str,
    run: str,
) -> list[Comparison]:
    from exportcheck.repair.mode_changes import runner_comparisons

    return runner_comparisons(
        runner,
        actual,
        expected,
        subject="exportcheck fix",
        artifact_format=kind,
        reference=reference,
        run=run,
        tolerance_for=tolerances.for_output,
    )


def _standalone_proof(
    result: RepairResult, inputs: tuple, tolerances: Tolerances
) -> list[ProofStep]:
    assert result.output is not None
    with runtime_path(result.output, result.kind) as output:
        return _proof_on_runtimes(result, output, inputs, tolerances)


def _proof_on_runtimes(
    result: RepairResult, output: str, inputs: tuple, tolerances: Tolerances
) -> list[ProofStep]:
    kind = result.kind
    runners = _runners(output, kind)
    seeds: list[Comparison] = []
    batch: list[Comparison] = []
    for runner in runners:
        first = _seeded_run(runner, inputs, _SEEDS[0])
        second = _seeded_run(runner, inputs, _SEEDS[1])
        seeds += _comparisons(
            runner, kind, second, first, tolerances, f"same artifact, seed {_SEEDS[0]}", "seed"
        )
        batch += _batch_companions(runner, kind, inputs, first, tolerances)
    steps = [
        _step("deterministic across seeds", seeds, f"seeds {_SEEDS[0]} and {_SEEDS[1]}"),
        _step("independent of batch companions", batch, "sample 0 with other companions"),
    ]
    steps.append(_difference_from_original(result, runners[:1], inputs, tolerances))
    return steps


def _batch_companions(
    runner: Any, kind: str, inputs: tuple, outputs: list[Any], tolerances: Tolerances
) -> list[Comparison]:
    from exportcheck.auditing.probes import batch_size, companions

    size = batch_size(inputs)
    if size is None or size < 2:
        return []
    import torch

    others = companions(inputs, size - 1, seed=11)
    mixed = tuple(
        torch.cat([x[:1], o]) if x.dim() > 0 else x for x, o in zip(inputs, others, strict=True)
    )
    again = runner.run(mixed)
    first = [o[:1] for o in outputs if getattr(o, "ndim", 0) and o.shape[0] == size]
    second = [o[:1] for o in again if getattr(o, "ndim", 0) and o.shape[0] == size]
    return _comparisons(
        runner, kind, second, first, tolerances, "sample 0 among its original companions", "batch"
    )


def _step(check: str, comparisons: list[Comparison], how: str) -> ProofStep:
    if not comparisons:
        return ProofStep(check, True, f"nothing to compare ({how}): no runner or no batch")
    failing = [c for c in comparisons if not c.passed]
    runtimes = sorted({c.runtime_label for c in comparisons})
    if failing:
        return ProofStep(
            check,
            False,
            f"{how}: {len(failing)} output(s) differ, up to {largest_difference(failing) or 0}",
            tuple(comparisons),
        )
    return ProofStep(check, True, f"{how}: equal on {', '.join(runtimes)}", tuple(comparisons))


def _difference_from_original(
    result: RepairResult, fixed: list[Any], inputs: tuple, tolerances: Tolerances
) -> ProofStep:
    """Reported, never judged: the original ran training-mode operations."""
    with runtime_path(result.source, result.kind) as source:
        original = _runners(source, result.kind, limit=1)
    if not fixed or not original:
        return ProofStep("difference from the original", True, "not measured: no runner")
    try:
        before = original[0].run(inputs)
    except Exception as error:
        return ProofStep(
            "difference from the original", True, f"the original does not run: {error}"
        )
    after = fixed[0].run(inputs)
    compared = _comparisons(
        fixed[0], result.kind, after, before, tolerances, "the original artifact", "original"
    )
    worst = max((c.metrics.max_abs or 0.0 for c in compared), default=0.0)
    detail = (
        f"the repaired artifact differs from the original by up to {largest_difference(compared) or 0} "
        f"({'identical' if worst == 0 else 'the original ran training-mode operations'})"
    )
    return ProofStep("difference from the original", True, detail, tuple(compared))


def is_artifact_reference(against: str) -> bool:
    """Whether `compare --against` names an artifact file rather than a model target."""
    from exportcheck.readers import ARTIFACT_SUFFIXES

    suffix = os.path.splitext(against)[1].lower()
    return suffix in ARTIFACT_SUFFIXES and os.path.isfile(against)


def compare_with_artifact(
    after: str | os.PathLike[str],
    before: str | os.PathLike[str],
    *,
    input_shapes: Sequence[str] = (),
) -> ModeChangeReport:
    """`compare AFTER --against BEFORE`: what changed the mode between two ONNX files (an
    optimizer's input and output, say), and AFTER's outputs against BEFORE's eval semantics."""
    from exportcheck.repair.mode_changes import compare_artifacts
    from exportcheck.targets.python_targets import parse_shape

    shapes = [parse_shape(text) for text in input_shapes]
    return compare_artifacts(os.fspath(after), os.fspath(before), shapes)

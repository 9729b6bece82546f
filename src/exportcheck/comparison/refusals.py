"""Where a runtime's refusal of an ONNX artifact points: the node its message names, that
node's module and source line, and what the node computes where that is what the runtime
could not take (a batch norm over weights alone, which folding constants turns into weights)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from exportcheck.comparison.runtimes import get_runtime
from exportcheck.readers.onnx import load_model, named_node
from exportcheck.readers.view import NodeView
from exportcheck.results.findings import Finding
from exportcheck.results.runtimes import REFUSED, RuntimeRun
from exportcheck.rules import RuntimeRefusal
from exportcheck.rules.training_batchnorm import WEIGHT_STANDARDIZATION, intended_batch_statistics


def what_it_computes(node: NodeView) -> tuple[str, str | None] | None:
    """What a refused node computes, where that explains the refusal, and the fix it calls for
    where it calls for its own."""
    if node.op != "BatchNormalization":
        return None
    intended = intended_batch_statistics(node)
    if intended is None:
        return None
    if intended is not WEIGHT_STANDARDIZATION:
        return intended, None
    return intended, (
        "Fold the artifact's constants before deploying it to this runtime (onnxslim, or "
        "ONNX Runtime's offline optimization at ORT_ENABLE_BASIC): the node computes from "
        "weights alone, and folded it becomes weights the runtime takes."
    )


def located_refusals(
    findings: Sequence[Finding], runs: Sequence[RuntimeRun], path: str
) -> list[Finding]:
    """The findings, each refusal of this ONNX artifact placed at the node its runtime names
    (module, source line), and saying what that node computes where that is known."""
    reasons = {run.runner_label: run for run in runs if run.status == REFUSED and run.detail}
    names = {
        label: get_runtime(run.runtime).refused_node(run.detail or "")
        for label, run in reasons.items()
    }
    named = {name for name in names.values() if name is not None}
    nodes = _nodes(path, named) if named else {}
    located = []
    for finding in findings:
        node = None
        if finding.rule == RuntimeRefusal.slug and not finding.location.node:
            node = nodes.get(names.get(finding.location.runtime or ""))
        located.append(finding if node is None else _placed(finding, node))
    return located


def _placed(refusal: Finding, node: NodeView) -> Finding:
    """The refusal at its node, saying what the node computes where that is known."""
    message, detail = refusal.message, refusal.detail
    computes = what_it_computes(node)
    if computes is not None:
        what, fix = computes
        message += f". The {node.op} it names {what}"
        if fix is not None:
            detail = {**(detail or {}), "fix": fix}
    location = replace(
        refusal.location,
        scope=node.scope,
        node=node.name,
        op_type=node.op,
        module=node.module,
        source_file=node.source_file,
        source_line=node.source_line,
    )
    return replace(refusal, message=message, location=location, detail=detail)


def _nodes(path: str, names: set[str]) -> dict[str | None, NodeView | None]:
    """Each named node of the artifact, which is parsed once for them all."""
    try:
        model = load_model(path)
        return {name: named_node(path, name, model) for name in names}
    except Exception:  # a place for the refusal is an addition: without one it stands as it is
        return {}

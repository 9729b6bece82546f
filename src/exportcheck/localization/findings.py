"""A localization as findings: the root cause as a `first-divergence` finding carrying the
whole trace, and a fix line naming what was found on the artifact's `output-mismatch`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from exportcheck.errors import first_line
from exportcheck.localization.ambiguity import Ambiguity, ambiguous_outputs, artifact_outputs
from exportcheck.localization.trace import Localization, TracePoint
from exportcheck.results.comparison import relative_text
from exportcheck.results.findings import Finding, Location, Severity
from exportcheck.rules import FirstDivergence, OutputMismatch

CONSEQUENCE_STAGE = "compare"
_SOURCE_PATH = re.compile(r"\S*/\S+\.(?:cc|cpp|h|hpp):\d+\s*(?:\S+\([^()]*\)(?: const)?\s*)?")


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def module_label(point: TracePoint) -> str:
    module = point.place.module or "<root>"
    kind = f" ({point.place.module_type})" if point.place.module_type else ""
    return f"`{module}`{kind}"


def _operation(point: TracePoint) -> str:
    place = point.place
    nodes = ", ".join(place.nodes[:3]) + (
        f" +{len(place.nodes) - 3}" if len(place.nodes) > 3 else ""
    )
    ops = "/".join(place.op_types)
    what = f"{place.operation} " if place.operation else ""
    measured = f", measured first at {place.measured_at}" if place.measured_at else ""
    return f"{what}as {nodes} ({ops}){measured}"


def root_message(trace: Localization, root: TracePoint, agrees_with: str | None) -> str:
    inputs = (
        f"its inputs agree (max abs {_number(root.inputs_max_abs)})"
        if root.inputs_max_abs is not None
        else "every value before it agrees"
    )
    propagated = trace.count("propagated")
    text = (
        f"{trace.artifact_format} on {trace.runtime}: {module_label(root)} first diverges at "
        f"{_operation(root)}: output differs by up to "
        f"{relative_text(root.max_abs or 0.0, root.magnitude)} while {inputs}; "
        f"{propagated} later value(s) carry it; {trace.matched} of {trace.candidates} values "
        f"matched ({trace.share_matched:.0%}, {trace.method})"
    )
    if agrees_with:
        text += f"; the same module {agrees_with} points at"
    return text


def root_fix(root: TracePoint) -> str:
    where = (
        f" at {root.place.source_file}:{root.place.source_line}" if root.place.source_file else ""
    )
    what = root.place.operation or "/".join(root.place.op_types)
    return (
        f"The artifact computes {what} in {module_label(root)}{where} differently from eager "
        f"PyTorch ({'/'.join(root.place.op_types)} in the artifact): correct its lowering (a "
        "custom symbolic or translation, another opset) or write that line with operators "
        "that export exactly."
    )


def unlocalized_fix(trace: Localization) -> str:
    return (
        f"No operation diverges on its own: all {trace.matched} matched values of "
        f"{trace.candidates} agree within tolerances scaled to their magnitude, so the "
        "difference builds up by rounding or sits in unmatched values; compare at float64 or "
        "widen --rtol/--atol for this output, with a reason."
    )


def _static_causes(findings: Sequence[Finding]) -> list[Finding]:
    return [
        f
        for f in findings
        if f.stage not in (CONSEQUENCE_STAGE, FirstDivergence.stage)
        and f.severity >= Severity.WARNING
    ]


def needs_localization(findings: Sequence[Finding], comparisons: Sequence[Any] = ()) -> bool:
    """A numerical output mismatch (the artifact ran, with the model's shapes) that no static
    finding of the artifact explains."""
    measured = any(not c.passed and c.run == "compare" and c.metrics.shape_ok for c in comparisons)
    mismatched = any(f.rule == OutputMismatch.slug for f in findings)
    return measured and mismatched and not _static_causes(findings)


def localization_findings(
    findings: Sequence[Finding],
    trace: Localization | None,
    *,
    subject: str,
    artifact: str | None,
    failure: Exception | None = None,
) -> list[Finding]:
    """`findings` with the localization's finding added and the mismatches' fix lines naming
    what was found (or why nothing could be)."""
    mismatched = any(f.rule == OutputMismatch.slug for f in findings)
    if isinstance(failure, UndefinedOutputs):
        return _undefined_findings(findings, failure, subject, artifact)
    if trace is None:
        why = _SOURCE_PATH.sub("", first_line(failure)) if failure else "no trace"
        fix = (
            f"Localization could not run ({why}): "
            "compare the artifact's intermediate values by hand; no mode problem was found."
        )
        return [_with_fix(f, fix) for f in findings]
    root = trace.root
    if root is None:
        fix = unlocalized_fix(trace)
        note = FirstDivergence.finding(
            f"{trace.artifact_format} on {trace.runtime}: no single operation diverges; "
            f"{trace.matched} of {trace.candidates} values matched ({trace.share_matched:.0%})",
            subject,
            Location(artifact=artifact, runtime=trace.runtime),
            Severity.INFO,
        )
        note = replace(note, detail={"fix": fix, "trace": trace.to_dict()})
        return [_with_fix(f, fix) for f in findings] + [note]
    static = [f for f in _static_causes(findings) if f.location.module == root.place.module]
    place = root.place
    finding = FirstDivergence.finding(
        root_message(trace, root, static[0].rule if static else None),
        subject,
        Location(
            artifact=artifact,
            node=place.nodes[-1] if place.nodes else None,
            op_type="/".join(place.op_types) or None,
            module=place.module or None,
            module_type=place.module_type,
            runtime=trace.runtime,
            source_file=place.source_file,
            source_line=place.source_line,
        ),
        None if mismatched else Severity.INFO,
    )
    fix = root_fix(root)
    finding = replace(finding, detail={"fix": fix, "trace": trace.to_dict()})
    return [_with_fix(f, fix) for f in findings] + [finding]


def _with_fix(finding: Finding, fix: str) -> Finding:
    if finding.rule != OutputMismatch.slug or "training mode" in finding.message:
        return finding
    return replace(finding, detail={**(finding.detail or {}), "fix": fix})


def localize_artifact(
    model: Any, artifact: Any, kind: str, inputs: Sequence[Any], fmt: str
) -> tuple[Localization | None, Exception | None]:
    """The trace, or the reason there is none: localization never fails a check. An output the
    model itself leaves undefined comes back as the failure, with the artifact's verdict."""
    from exportcheck.localization import localize

    try:
        ambiguous = ambiguous_outputs(model, inputs, artifact_outputs(artifact, kind, inputs))
        if ambiguous:
            return None, UndefinedOutputs(ambiguous)
        return localize(model, artifact, kind, inputs, fmt), None
    except Exception as error:
        return None, error


class UndefinedOutputs(Exception):
    """The eval-mode model computes some outputs two ways: they are not the artifact's fault."""

    def __init__(self, found: Sequence[Ambiguity]) -> None:
        super().__init__("; ".join(a.describe() for a in found))
        self.found = tuple(found)


def _undefined_findings(
    findings: Sequence[Finding], why: UndefinedOutputs, subject: str, artifact: str | None
) -> list[Finding]:
    """Where the artifact agrees with the model wherever the model is defined, its mismatch
    is the reference's ambiguity, an info with the reason; elsewhere it stays an error."""
    agrees = all(a.artifact_agrees_where_defined for a in why.found)
    where = (
        "; the artifact agrees with the model everywhere else"
        if agrees
        else ("; the artifact differs from it at defined positions too")
    )
    fix = (
        "The model's own output is ambiguous there: compare only where it is defined, or run "
        "the reference with autograd on (the path an export traces)."
    )
    note = FirstDivergence.finding(
        f"{why}{where}", subject, Location(artifact=artifact), Severity.INFO
    )
    result = []
    for finding in findings:
        if finding.rule == OutputMismatch.slug and "training mode" not in finding.message:
            finding = replace(
                finding,
                message=f"{finding.message}; {why}{where}",
                severity=Severity.INFO if agrees else finding.severity,
                detail={**(finding.detail or {}), "fix": fix},
            )
        result.append(finding)
    return result + [replace(note, detail={"fix": fix})]

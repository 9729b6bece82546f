"""exportcheck: prove that a PyTorch model was exported and deployed in eval mode.

The public API is imported lazily so that `exportcheck rules` and static ONNX inspection
never pay for importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "inspect": ("exportcheck.pipeline.inspection", "inspect"),
    "validate": ("exportcheck.pipeline.validation", "validate"),
    "compare": ("exportcheck.pipeline.validation", "compare"),
    "audit": ("exportcheck.pipeline.validation", "audit"),
    "fix": ("exportcheck.pipeline.repairing", "fix"),
    "eval_mode": ("exportcheck.auditing.modes", "eval_mode"),
    "Report": ("exportcheck.results.report", "Report"),
    "Finding": ("exportcheck.results.findings", "Finding"),
    "Severity": ("exportcheck.results.findings", "Severity"),
    "ExportcheckError": ("exportcheck.errors", "ExportcheckError"),
}

if TYPE_CHECKING:
    from exportcheck.auditing.modes import eval_mode
    from exportcheck.errors import ExportcheckError
    from exportcheck.pipeline.inspection import inspect
    from exportcheck.pipeline.repairing import fix
    from exportcheck.pipeline.validation import audit, compare, validate
    from exportcheck.results.findings import Finding, Severity
    from exportcheck.results.report import Report


# What runs a model needs torch, onnxruntime and onnxscript: the `validate` extra.
_NEEDS_VALIDATE_EXTRA = frozenset({"validate", "compare", "audit", "eval_mode", "fix"})


def __getattr__(name: str) -> Any:
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'exportcheck' has no attribute {name!r}") from None
    import importlib

    if name in _NEEDS_VALIDATE_EXTRA:
        from exportcheck.pipeline.extras import require_validate_extra

        require_validate_extra(f"exportcheck.{name}")

    value = getattr(importlib.import_module(module_name), attribute)
    globals()[name] = value
    return value


__all__ = [
    "ExportcheckError",
    "Finding",
    "Report",
    "Severity",
    "__version__",
    "audit",
    "compare",
    "eval_mode",
    "fix",
    "inspect",
    "validate",
]

"""What the commands that run models need beyond the light install, checked before any work."""

from __future__ import annotations

import importlib.util

from exportcheck.errors import MissingExtraError

VALIDATE_EXTRA = "validate"
# What `pip install 'exportcheck[validate]'` adds: the exporters, their runtime and torch.
VALIDATE_MODULES = ("torch", "onnxruntime", "onnxscript")


def require_validate_extra(command: str) -> None:
    """Raises MissingExtraError naming the extra when a module it installs is not importable.

    `find_spec` looks the modules up without importing them, so the check costs nothing where
    they are present and the light commands never pay for it."""
    missing = [name for name in VALIDATE_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(
            f"{command} needs {', '.join(missing)}, which the light install leaves out: "
            f"pip install 'exportcheck[{VALIDATE_EXTRA}]'"
        )

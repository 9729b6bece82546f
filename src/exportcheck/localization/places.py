"""Where a value comes from in the user's code: the innermost frame of an exporter's recorded
stack trace outside torch, or the forward of the module that computes it."""

from __future__ import annotations

import inspect
import re
from typing import Any

_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')
_LIBRARY = ("/torch/", "/site-packages/", "/dist-packages/", "<")


def user_frame(stack_trace: str | None) -> tuple[str | None, int | None]:
    """The innermost frame of a stack trace that is not torch's or another library's."""
    if not stack_trace:
        return None, None
    frames = [(m["file"], int(m["line"])) for m in _FRAME.finditer(stack_trace)]
    for path, line in reversed(frames):
        if not any(part in path.replace("\\", "/") for part in _LIBRARY):
            return path, line
    return frames[-1] if frames else (None, None)


def forward_line(module: Any) -> tuple[str | None, int | None]:
    """The file and first line of a module's `forward`."""
    try:
        forward = type(module).forward
        path = inspect.getsourcefile(forward)
        _, line = inspect.getsourcelines(forward)
    except (TypeError, OSError, AttributeError):
        return None, None
    return path, line


def module_from_stack(stack: Any) -> tuple[str | None, str | None]:
    """(path, class name) of the innermost module in an FX node's `nn_module_stack`."""
    if not stack:
        return None, None
    path, kind = list(stack.values())[-1]
    path = re.sub(r"^L\['self'\]\.?", "", str(path)).replace("._modules['", ".").replace("']", "")
    name = kind.__name__ if isinstance(kind, type) else str(kind).rsplit(".", 1)[-1]
    return path or None, name

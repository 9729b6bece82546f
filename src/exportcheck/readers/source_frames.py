"""Which frames of a recorded Python stack are the user's code rather than torch's own."""

from __future__ import annotations

import re

_TORCH_PACKAGE = re.compile(r"(^|[/\\])torch[/\\]")
_TRACEBACK_FRAME = re.compile(r'File "([^"\n]+)", line (\d+)')


def is_torch_source(file: str) -> bool:
    """True for a file inside a `torch/` package folder (site-packages or a source tree)."""
    return _TORCH_PACKAGE.search(file) is not None


def last_user_frame(stack_trace: str) -> tuple[str, int] | None:
    """The innermost `File "...", line N` of a traceback-formatted stack (innermost last)
    that is not torch's own code."""
    for file, line in reversed(_TRACEBACK_FRAME.findall(stack_trace)):
        if not is_torch_source(file):
            return file, int(line)
    return None

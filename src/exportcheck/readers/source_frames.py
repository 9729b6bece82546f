"""Which frames of a recorded Python stack are the user's code rather than torch's own."""

from __future__ import annotations

import re

_TORCH_PACKAGE = re.compile(r"(^|[/\\])torch[/\\]")
# No nested quantifiers: each match scans at most to the next quote or newline. The line number
# is taken as digits of any length and judged after, so a huge one cannot match a shorter span.
_TRACEBACK_FRAME = re.compile(r'File "([^"\n]+)", line (\d+)')
# A source line of a real file: int() refuses more than 4300 digits, and a huge number breaks
# the report's formatting, so a frame with a longer line number is no location.
MAX_LINE_DIGITS = 9


def is_torch_source(file: str) -> bool:
    """True for a file inside a `torch/` package folder (site-packages or a source tree)."""
    return _TORCH_PACKAGE.search(file) is not None


def last_user_frame(stack_trace: str) -> tuple[str, int] | None:
    """The innermost `File "...", line N` of a traceback-formatted stack (innermost last)
    that is not torch's own code; None when there is none or its line number is absurd."""
    for file, line in reversed(_TRACEBACK_FRAME.findall(stack_trace)):
        if not is_torch_source(file):
            return (file, int(line)) if len(line) <= MAX_LINE_DIGITS else None
    return None

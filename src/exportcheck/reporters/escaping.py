"""Text from a report made safe for where it goes: terminals, Markdown, JSON and XML.

Names come from the inspected files (node names, file names), so they may hold terminal
escape sequences, characters that make a line display in another order than it reads, or bytes
that are not UTF-8 (a file name decoded with `surrogateescape`). Shown to a person, each becomes
a visible escape (`printable`); JSON keeps the exact string (`dumps_valid`).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_UNSAFE_CLASS = (
    # C0 controls (ESC starts a terminal sequence; a newline inside a name would start a line
    # that seems to be the report's own), DEL and the C1 controls (U+009B is a one-character CSI).
    "\x00-\x1f\x7f-\x9f"
    # Bidi embeddings, overrides, isolates and marks: they reorder what follows on the line.
    "\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c"
    # Line and paragraph separators end a line where none shows.
    "\u2028\u2029"
    # Not characters; XML 1.0 refuses them even as character references.
    "\ufffe\uffff"
    # Lone surrogates: an undecodable byte of a file name, or text that is not Unicode.
    "\ud800-\udfff"
)
_UNSAFE = re.compile(f"[{_UNSAFE_CLASS}]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# How json.dumps (ASCII output) writes a code point in U+D800..U+DFFF: a lone surrogate, or
# half of the pair that spells a character beyond the BMP.
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape maps an undecodable byte b to U+DC00 + b
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def valid_unicode(text: str) -> str:
    """The text with lone surrogates written out as `\\xNN`, so it encodes as UTF-8."""
    return _SURROGATE.sub(_escape, text)


def printable(value: object) -> str:
    """For a person to read (a terminal, Markdown, XML, a message in a log viewer): control
    characters and escape sequences (C0, DEL, C1), the bidi controls and marks, line and
    paragraph separators, non-characters and undecodable bytes written out as `\\xNN` or
    `\\uNNNN`, so the text shows what it holds, on one line, in the order it reads.

    Backslashes are left as they are (a Windows path stays readable), so escaping twice
    changes nothing."""
    return _UNSAFE.sub(_escape, str(value))


def dumps_valid(data: Any, **options: Any) -> str:
    """`json.dumps(data, **options)` with every string (keys too) made valid Unicode first,
    and, under `allow_nan=False`, every non-finite float written as a string.

    Almost no report holds a surrogate or an infinity, so the data is dumped as it is and
    walked only when the dump shows one (a walk of a 100k-node report's strings costs more
    than the dump)."""
    try:
        dumped = json.dumps(data, **options)
    except ValueError:  # strict JSON has no inf or nan
        data = finite_data(data)
        dumped = json.dumps(data, **options)
    if _ESCAPED_SURROGATE.search(dumped) is None:
        return dumped
    return json.dumps(valid_data(data), **options)


def finite_data(value: Any) -> Any:
    """Data with every non-finite float as a string ("inf", "nan"): a relative difference
    against an exact zero is infinite, and strict JSON has no such number."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: finite_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_data(v) for v in value]
    return value


def valid_data(value: Any) -> Any:
    """JSON-ready data with every string (keys too) made valid Unicode."""
    if isinstance(value, str):
        return valid_unicode(value)
    if isinstance(value, dict):
        return {valid_data(k): valid_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [valid_data(v) for v in value]
    return value

"""Text from a report made safe for where it goes: terminals, Markdown, JSON and XML.

Names come from the inspected files (node names, file names), so they may hold terminal
escape sequences or bytes that are not UTF-8 (a file name decoded with `surrogateescape`).
"""

from __future__ import annotations

import json
import re
from typing import Any

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# How json.dumps (ASCII output) writes a code point in U+D800..U+DFFF: a lone surrogate, or
# half of the pair that spells a character beyond the BMP.
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _surrogate(match: re.Match[str]) -> str:
    code = ord(match.group())
    # surrogateescape maps an undecodable byte b to U+DC00 + b.
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def valid_unicode(text: str) -> str:
    """The text with lone surrogates written out as `\\xNN`, so it encodes as UTF-8."""
    return _SURROGATE.sub(_surrogate, text)


def printable(value: object) -> str:
    """For a terminal or Markdown: control characters (ESC, BEL, newlines inside a name)
    and undecodable bytes written out as `\\xNN`."""
    text = valid_unicode(str(value))
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def xml_text(value: object) -> str:
    """For XML 1.0: valid UTF-8, and the control characters XML forbids (even as character
    references) replaced by U+FFFD."""
    return _NOT_XML.sub("\ufffd", valid_unicode(str(value)))


def dumps_valid(data: Any, **options: Any) -> str:
    """`json.dumps(data, **options)` with every string (keys too) made valid Unicode first.

    Almost no report holds a surrogate, so the data is dumped as it is and walked only when
    the dump shows one (a walk of a 100k-node report's strings costs more than the dump)."""
    dumped = json.dumps(data, **options)
    if _ESCAPED_SURROGATE.search(dumped) is None:
        return dumped
    return json.dumps(valid_data(data), **options)


def valid_data(value: Any) -> Any:
    """JSON-ready data with every string (keys too) made valid Unicode."""
    if isinstance(value, str):
        return valid_unicode(value)
    if isinstance(value, dict):
        return {valid_data(k): valid_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [valid_data(v) for v in value]
    return value

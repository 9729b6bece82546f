"""Original source lines for TorchScript code, from the archive's `code/**.py.debug_pkl`.

torch writes, next to each code file, a pickle that maps byte offsets in that file to ranges of
the Python source it was compiled from. It is read with the restricted unpickler (inert data
only). A node's position is the call stack of its code positions, innermost first; the
position reported is the innermost one whose source lies outside torch's own package, which
for an `F.dropout` inlined into `Head.forward` is the `F.dropout` line in the user's file.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from exportcheck.errors import InputError
from exportcheck.readers.archive import Archive
from exportcheck.readers.restricted_pickle import restricted_load
from exportcheck.readers.source_frames import is_torch_source

_STRING_TABLE_FORMAT = "FORMAT_WITH_STRING_TABLE"
_TRACE_FRAME = re.compile(r"\((\d{1,9})\): ")
# A line number past this is no source line: the location is dropped.
MAX_LINE = 10**8

# (code member, line, byte column) of one call, and the stack of calls that led to it.
CodePosition = tuple[str, int, int]
CallStack = tuple[CodePosition, Any] | None


@dataclass(frozen=True)
class SourceRange:
    file: str
    line: int


class _MemberRanges:
    """One code member's byte offsets and the source range that starts at each."""

    def __init__(self, code: bytes, entries: list[tuple[int, Any]], strings: Any) -> None:
        self.line_starts = [0]
        position = code.find(b"\n")
        while position != -1:
            self.line_starts.append(position + 1)
            position = code.find(b"\n", position + 1)
        self.offsets = [offset for offset, _ in entries]
        self._raw = [raw for _, raw in entries]
        self._decoded: dict[int, tuple[SourceRange, ...]] = {}
        # The texts the entries share, decoded once each (see _SourceTexts).
        self._texts = _SourceTexts(strings)

    def at(self, line: int, column: int) -> tuple[SourceRange, ...]:
        """The source frames of the code at that position, innermost first."""
        if not 1 <= line <= len(self.line_starts):
            return ()
        offset = self.line_starts[line - 1] + column
        index = bisect.bisect_right(self.offsets, offset) - 1
        if index < 0:
            return ()
        if index not in self._decoded:
            self._decoded[index] = _source_range(self._raw[index], self._texts)
        return self._decoded[index]


@dataclass
class SourceMap:
    """Debug info of every code member that has it, read and decoded on first use.

    Most inspections point at no node, so the debug pickles are not read with the rest of the
    archive: the first lookup opens the archive again and reads them all at once (a file gone
    or changed by then gives no source, never an error).
    """

    path: str = ""
    _code: dict[str, bytes] = field(default_factory=dict)
    _debug_members: dict[str, str] = field(default_factory=dict)
    _debug_pickles: dict[str, bytes] | None = None
    _members: dict[str, _MemberRanges | None] = field(default_factory=dict)

    def add(self, member: str, code: Mapping[str, bytes], debug_member: str) -> None:
        self._code[member] = code[member]
        self._debug_members[member] = debug_member

    def _read_debug_pickles(self) -> dict[str, bytes]:
        pickles: dict[str, bytes] = {}
        try:
            with Archive(self.path, "debug info") as archive:
                for member, debug_member in self._debug_members.items():
                    if debug_member in archive.names:
                        pickles[member] = archive.read(debug_member)
        except InputError:
            pass
        return pickles

    def _ranges(self, member: str) -> _MemberRanges | None:
        if member not in self._members:
            if self._debug_pickles is None:
                self._debug_pickles = self._read_debug_pickles() if self._debug_members else {}
            debug_pickle = self._debug_pickles.pop(member, None)
            code = self._code.pop(member, None)
            ranges = None
            if debug_pickle is not None and code is not None:
                try:
                    loaded = restricted_load(debug_pickle)
                except ValueError:
                    loaded = None
                # Debug info that names foreign globals is not what torch writes: no source.
                if loaded is not None and not loaded.unsafe_globals:
                    ranges = _decode(code, loaded.value)
            self._members[member] = ranges
        return self._members[member]

    def locate(self, stack: CallStack) -> SourceRange | None:
        """The innermost source range of the stack that is not torch's own code."""
        while stack is not None:
            (member, line, column), stack = stack
            ranges = self._ranges(member)
            for source in ranges.at(line, column) if ranges is not None else ():
                if not is_torch_source(source.file):
                    return source
        return None


def _decode(code: bytes, debug_info: Any) -> _MemberRanges | None:
    """Both layouts torch has written: with a string table (1.13 and later) and without."""
    strings: Any = None
    records = debug_info
    if (
        isinstance(debug_info, tuple)
        and len(debug_info) == 3
        and debug_info[0] == _STRING_TABLE_FORMAT
    ):
        strings, records = debug_info[1], debug_info[2]
        if not isinstance(strings, tuple):
            return None
    if not isinstance(records, tuple):
        return None
    entries = [
        (record[0], record[1])
        for record in records
        if isinstance(record, tuple) and len(record) >= 2 and isinstance(record[0], int)
    ]
    entries.sort(key=lambda entry: entry[0])
    return _MemberRanges(code, entries, strings)


class _SourceTexts:
    """The source texts debug entries point at, each joined and indexed once: thousands of
    entries share one text (by string-table indices, or one pickled string)."""

    def __init__(self, strings: tuple[Any, ...] | None) -> None:
        self.strings = strings
        self._texts: dict[int, tuple[Any, str | None, str | None]] = {}
        self._indexed: dict[int, tuple[str, tuple[SourceRange, ...] | None, list[int]]] = {}

    def text(self, text_part: Any, file_part: Any) -> tuple[str | None, str | None]:
        """The text and file name an entry names, or (None, None)."""
        key = id(text_part)
        known = self._texts.get(key)
        if known is None or known[0] is not text_part:
            known = (text_part, *self._resolve(text_part, file_part))
            self._texts[key] = known
        if self.strings is not None:
            file = _string_at(self.strings, file_part)
            return (known[1], file) if file else (None, None)
        return known[1], file_part if isinstance(file_part, str) and file_part else None

    def _resolve(self, text_part: Any, file_part: Any) -> tuple[str | None, None]:
        strings = self.strings
        if strings is None:
            return (text_part if isinstance(text_part, str) else None), None
        if not isinstance(text_part, list):
            return None, None
        pieces = [_string_at(strings, i) for i in text_part]
        if any(piece is None for piece in pieces):
            return None, None
        return "".join(pieces), None  # type: ignore[arg-type]

    def frames_and_lines(
        self, text: str, file: str
    ) -> tuple[tuple[SourceRange, ...] | None, list[int]]:
        """A traced module's stack frames in the text (or None), and where its lines start."""
        known = self._indexed.get(id(text))
        if known is None or known[0] is not text:
            known = (text, _trace_frames(text), _line_starts(text))
            self._indexed[id(text)] = known
        return known[1], known[2]


def _string_at(strings: tuple[Any, ...], index: Any) -> str | None:
    if type(index) is int and 0 <= index < len(strings) and isinstance(strings[index], str):
        return strings[index]
    return None


def _line_starts(text: str) -> list[int]:
    """Offsets (in UTF-8 bytes, as torch counts) where each line of the text starts."""
    encoded = text.encode("utf-8", "replace")
    starts = [0]
    position = encoded.find(b"\n")
    while position != -1:
        starts.append(position + 1)
        position = encoded.find(b"\n", position + 1)
    return starts


def _trace_frames(text: str) -> tuple[SourceRange, ...] | None:
    """`file(line): code` on every line: a traced module's Python stack, innermost first."""
    lines = text.split("\n")
    if len(lines) < 2 or lines[-1]:
        return None
    frames: list[SourceRange] = []
    for line in lines[:-1]:
        # The last `(N): ` of the line ends the file name (a name may hold parentheses).
        found = max(_TRACE_FRAME.finditer(line), key=lambda m: m.start(), default=None)
        if found is None or found.start() == 0:
            return None
        frames.append(SourceRange(line[: found.start()], int(found.group(1))))
    return tuple(frames)


def _source_range(value: Any, texts: _SourceTexts) -> tuple[SourceRange, ...]:
    if not (isinstance(value, tuple) and len(value) == 3 and type(value[1]) is int):
        return ()
    source, start = value[0], value[1]
    if not (isinstance(source, tuple) and len(source) == 3):
        return ()
    text_part, file_part, first_line = source
    if type(first_line) is not int or not 0 <= first_line <= MAX_LINE or start < 0:
        return ()
    text, file = texts.text(text_part, file_part)
    if text is None or file is None:
        return ()
    frames, line_starts = texts.frames_and_lines(text, file)
    if frames is not None:
        return frames
    line = first_line + bisect.bisect_right(line_starts, start) - 1
    return (SourceRange(file, line),) if line <= MAX_LINE else ()

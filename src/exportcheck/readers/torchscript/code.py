"""The archive's code files as classes and functions, parsed once per distinct method text.

A scripted ResNet's archive holds one class per mangled type, and the methods of those
classes repeat: thirty Conv2d classes share one `forward`. The TorchScript printer writes a
fixed layout (classes and functions at column 0, class attributes and methods at column 2),
so each file is cut into one chunk per method and each distinct chunk text is parsed once.
A file that leaves that layout, or a chunk that does not parse alone, is parsed whole, which
gives the same tree or the error Python gives for the whole file.
"""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

# Characters that would make a chunk's indentation or line joins differ from the whole file.
_LAYOUT_BREAKERS = ("\t", "\r", "\f", "\v", "\\\n")
_SELF_ANNOTATION = re.compile(r"def (\w+)\(self: [\w.]+")
_CHUNK_START = re.compile(r"(?<=\n)(?=class |def |  def )")
# The printer's layout: a class's attribute lines at column 2, method bodies deeper, a
# function's body at column 1 or deeper; blank lines anywhere. Checked line by line (a pattern
# repeated over lines backtracks exponentially on lines that fit two alternatives).
_CLASS_LINE = re.compile(r"class (\w+)\(\w*\):")
_ATTRIBUTE_LINE = re.compile(r"  (?:\w+ : |__\w+__(?:\[\"[^\"]*\"\])? = )")


def parse_quietly(text: str, filename: str = "<archive code>") -> ast.Module:
    """`ast.parse` of archive text: what the text provokes (a SyntaxWarning for `1if`, an
    invalid escape) is not printed on the user's stderr; errors still raise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(text, filename=filename)


def _class_name(chunk: str) -> str | None:
    """The class a chunk declares when it is in the printer's layout, else None."""
    first, _, rest = chunk.partition("\n")
    matched = _CLASS_LINE.fullmatch(first)
    if matched is None:
        return None
    for line in rest.split("\n"):
        if line.strip(" ") and _ATTRIBUTE_LINE.match(line) is None:
            return None
    return matched.group(1)


def _in_layout(chunk: str, indent: str) -> bool:
    """Every line after a def's first is indented by `indent` or blank."""
    for line in chunk.split("\n")[1:]:
        if not line.startswith(indent) and line.strip(" "):
            return False
    return True


# Python's parser keeps 50 (printed TorchScript) to 190 (a name every two bytes) bytes of tree
# per byte of code, and peaks at 700 while it parses: one text parsed and all distinct code
# parsed are bounded so that both fit in about 300 MB. A scripted 24-layer Transformer has
# 77 kB of code, its largest method 6 kB.
MAX_PARSE_BYTES = 256 << 10
MAX_PARSED_BYTES = 768 << 10


class InterpretError(Exception):
    """Code this reader refuses to walk (too deep, too long, not TorchScript)."""


@dataclass(frozen=True)
class Origin:
    """Where a function's code sits: the archive member, and what to add to the lines and
    columns its tree holds to get the member's own."""

    member: str
    line_offset: int = 0
    column_offset: int = 0


@dataclass(frozen=True)
class Function:
    tree: ast.FunctionDef
    origin: Origin


@dataclass
class ClassCode:
    """One class: its methods in file order and its `name : T = value` lines, read when first
    asked for."""

    name: str
    methods: dict[str, Function] = field(default_factory=dict)
    header: str = ""
    member: str = ""
    _constants: dict[str, Any] | None = None
    _annotations: dict[str, ast.expr] = field(default_factory=dict)

    def constant(self, name: str) -> Any:
        """The value expression of a class attribute, or None."""
        if self._constants is None:
            self._read_header()
        return self._constants.get(name)  # type: ignore[union-attr]

    def attribute_type(self, name: str) -> ast.expr | None:
        """The annotation of a class attribute (`conv : __torch__.X`), or None."""
        if self._constants is None:
            self._read_header()
        return self._annotations.get(name)

    def _read_header(self) -> None:
        self._constants = {}
        try:
            tree = parse_quietly(self.header) if self.header else None
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            raise InterpretError(
                f"{self.member}: the attributes of class {self.name} are not TorchScript"
            ) from None
        body = tree.body[0].body if tree is not None else ()  # type: ignore[attr-defined]
        for statement in body:
            _read_attribute(statement, self._constants, self._annotations)


def _read_attribute(
    statement: ast.stmt, constants: dict[str, Any], annotations: dict[str, ast.expr]
) -> None:
    if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
        annotations[statement.target.id] = statement.annotation
        if statement.value is not None:
            constants[statement.target.id] = statement.value


@dataclass
class ParsedFile:
    classes: list[ClassCode]
    functions: dict[str, Function]


class ChunkParser:
    """Parses code files of one archive, sharing the tree of every repeated method text."""

    def __init__(self) -> None:
        self._trees: dict[str, ast.FunctionDef | None] = {}
        self.parsed_bytes = 0

    def _spend(self, text: str) -> None:
        """Counts code about to be parsed; past the budget, InterpretError before parsing."""
        self.parsed_bytes += len(text)
        if len(text) > MAX_PARSE_BYTES:
            raise InterpretError(f"more than {MAX_PARSE_BYTES} bytes of code in one piece to parse")
        if self.parsed_bytes > MAX_PARSED_BYTES:
            raise InterpretError(f"more than {MAX_PARSED_BYTES} bytes of distinct code to parse")

    def parse(self, text: str, member: str) -> ParsedFile:
        """The file's classes and functions; raises SyntaxError, ValueError, RecursionError or
        MemoryError as `ast.parse` of the whole file does, InterpretError past the budget."""
        parsed = None
        if not any(breaker in text for breaker in _LAYOUT_BREAKERS):
            parsed = self._parse_chunks(text, member)
        if parsed is None:
            self._spend(text)
            parsed = whole_file(parse_quietly(text, member), member)
        return parsed

    def _parse_chunks(self, text: str, member: str) -> ParsedFile | None:
        if not text.endswith("\n"):
            text += "\n"
        classes: list[ClassCode] = []
        functions: dict[str, Function] = {}
        line = 1
        for chunk in _CHUNK_START.split(text):
            if not chunk:
                continue
            first_line, line = line, line + chunk.count("\n")
            if chunk.startswith("  def "):
                if not classes or not _in_layout(chunk, "   "):
                    return None
                function = self._function(chunk, 2)
                if function is None:
                    return None
                classes[-1].methods[function.name] = Function(
                    function, Origin(member, first_line - 1, 2)
                )
            elif chunk.startswith("def "):
                if not _in_layout(chunk, " "):
                    return None
                function = self._function(chunk, 0)
                if function is None:
                    return None
                functions[function.name] = Function(function, Origin(member, first_line - 1))
            elif chunk.startswith("class "):
                name = _class_name(chunk)
                if name is None:
                    return None
                header = chunk if "\n  " in chunk else chunk + "  pass\n"
                self._spend(header)
                classes.append(ClassCode(name, header=header, member=member))
            else:
                return None
        return ParsedFile(classes, functions)

    def _function(self, chunk: str, indent: int) -> ast.FunctionDef | None:
        text = chunk.replace("\n" + " " * indent, "\n")[indent:] if indent else chunk
        # The `self` annotation names the mangled class: without it, the methods of all
        # mangled copies of a class read the same.
        first, newline, rest = text.partition("\n")
        text = _SELF_ANNOTATION.sub(r"def \1(self", first, count=1) + newline + rest
        if text in self._trees:
            return self._trees[text]
        try:
            self._spend(text)
            tree = parse_quietly(text)
        except (SyntaxError, ValueError):
            tree = None
        function = None
        if tree is not None and len(tree.body) == 1 and isinstance(tree.body[0], ast.FunctionDef):
            function = tree.body[0]
        self._trees[text] = function
        return function


def whole_file(tree: ast.Module, member: str) -> ParsedFile:
    origin = Origin(member)
    classes: list[ClassCode] = []
    functions: dict[str, Function] = {}
    for statement in tree.body:
        if isinstance(statement, ast.ClassDef):
            cls = ClassCode(statement.name)
            constants: dict[str, Any] = {}
            for inner in statement.body:
                if isinstance(inner, ast.FunctionDef):
                    cls.methods[inner.name] = Function(inner, origin)
                else:
                    _read_attribute(inner, constants, cls._annotations)
            cls._constants = constants
            classes.append(cls)
        elif isinstance(statement, ast.FunctionDef):
            functions[statement.name] = Function(statement, origin)
    return ParsedFile(classes, functions)

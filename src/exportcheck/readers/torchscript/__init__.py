"""Reads a TorchScript archive by parsing it: code with `ast`, pickles with a restricted unpickler.

Nothing in the archive runs: no `torch.jit.load`, no `__setstate__`, no storage is read. The
module tree and `training` flags come from data.pkl, the nodes from walking the code of every
root method (see interpreter.py; code.py parses each distinct method once), their source lines
from the debug info next to the code (sources.py), read only for the nodes a finding points at.
"""

from __future__ import annotations

import ast
import zipfile
from typing import Any

from exportcheck.errors import first_line
from exportcheck.readers.archive import Archive, archive_root
from exportcheck.readers.restricted_pickle import (
    Record,
    restricted_load,
    unsafe_globals,
)
from exportcheck.readers.torchscript.code import ChunkParser, Function, InterpretError
from exportcheck.readers.torchscript.interpreter import (
    CodeIndex,
    Interpreter,
    RawNode,
    value_names,
)
from exportcheck.readers.torchscript.safety import unsafe_code
from exportcheck.readers.torchscript.sources import CallStack, SourceMap
from exportcheck.readers.view import (
    ArtifactKind,
    ArtifactView,
    GraphIndex,
    ModuleFlag,
    NodeListIndex,
    NodeView,
    Note,
    UnsafeContent,
)

ERROR_PREFIX = "cannot load as TorchScript"
MAX_FILE_FORMAT_VERSION = 10
MAX_CODE_BYTES = 64 << 20
__all__ = ["read_torchscript"]


def _check_version(archive: Archive, root: str) -> None:
    member = f"{root}version"
    if member not in archive.names:
        return
    text = archive.read(member, 64).decode("ascii", "replace").strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_FILE_FORMAT_VERSION:
        raise archive.error(
            f"archive file format version {text!r} (this exportcheck reads versions 1 to "
            f"{MAX_FILE_FORMAT_VERSION}; saved by a newer torch?)"
        )


def _parse_code(archive: Archive, root: str) -> tuple[CodeIndex, dict[str, bytes]]:
    index = CodeIndex()
    texts: dict[str, bytes] = {}
    parser = ChunkParser()
    prefix = f"{root}code/"
    total = 0
    for name in archive.names:
        if not (name.startswith(prefix) and name.endswith(".py")):
            continue
        data = archive.read(name, MAX_CODE_BYTES)
        texts[name] = data
        total += len(data)
        if total > MAX_CODE_BYTES:
            raise archive.error(f"code members hold more than {MAX_CODE_BYTES} bytes")
        try:
            text = data.decode("utf-8")
            parsed = parser.parse(text, name)
        except (SyntaxError, ValueError, UnicodeDecodeError) as error:
            raise archive.error(f"{name} is not TorchScript code ({first_line(error)})") from None
        except (RecursionError, MemoryError):
            raise archive.error(f"{name} nests too deeply to parse") from None
        except InterpretError as error:
            raise archive.error(f"{name}: {error}") from None
        qualifier = name[len(prefix) : -len(".py")].replace("/", ".")
        index.add(qualifier, parsed)
    return index, texts


def _unpickle(archive: Archive, member: str, required: bool) -> tuple[Any, tuple[str, ...]]:
    if member not in archive.names:
        if required:
            raise archive.error(f"no {member.rsplit('/', 1)[-1]} in the archive")
        return (), ()
    try:
        loaded = restricted_load(archive.read(member))
    except ValueError as error:
        raise archive.error(f"{member} {first_line(error, with_type=False)}") from None
    return loaded.value, loaded.unsafe_globals


def _module_flags(root: Record) -> list[tuple[str, Record]]:
    """Every module record, pre-order, with its attribute path (`named_modules()` order)."""
    found: list[tuple[str, Record]] = []
    stack: list[tuple[str, Record]] = [("", root)]
    seen: set[int] = set()
    while stack:
        path, record = stack.pop()
        if id(record) in seen:
            continue
        seen.add(id(record))
        attributes = record.attributes
        if not isinstance(attributes.get("training"), bool):
            continue
        found.append((path, record))
        children = [
            (f"{path}.{name}" if path else name, value)
            for name, value in attributes.items()
            if isinstance(value, Record)
        ]
        stack.extend(reversed(children))
    return found


def read_torchscript(
    path: str, wanted: frozenset[str], opened: zipfile.ZipFile | None = None
) -> ArtifactView:
    """`opened`: the file already opened as a zip, handed over (see Archive)."""
    with Archive(path, ERROR_PREFIX, opened) as archive:
        root = archive_root(archive.names)
        _check_version(archive, root)
        unsafe = [UnsafeContent(m.name, m.reason) for m in archive.unsafe_members()]
        data, data_unsafe = _unpickle(archive, f"{root}data.pkl", required=True)
        constants, constants_unsafe = _unpickle(archive, f"{root}constants.pkl", required=False)
        for member, bad in (
            (f"{root}data.pkl", data_unsafe),
            (f"{root}constants.pkl", constants_unsafe),
        ):
            if bad:
                unsafe.append(UnsafeContent(member, f"a pickle that imports {', '.join(bad[:5])}"))
        code, texts = _parse_code(archive, root)
        sources = SourceMap(path)
        for name in archive.names:
            if name.endswith(".py.debug_pkl") and name[: -len(".debug_pkl")] in texts:
                # torch reads debug info with its own unpickler, which imports nothing; it is
                # read only for a node whose source is asked for.
                sources.add(name[: -len(".debug_pkl")], texts, name)
            elif name.endswith(".pkl") and name not in (
                f"{root}data.pkl",
                f"{root}constants.pkl",
            ):
                try:
                    bad = unsafe_globals(archive.read(name))
                except ValueError as error:
                    bad = [f"<unreadable: {first_line(error, with_type=False)}>"]
                if bad:
                    unsafe.append(
                        UnsafeContent(name, f"a pickle that imports {', '.join(bad[:5])}")
                    )
        try:
            unsafe.extend(unsafe_code(code, texts))
        except InterpretError as error:
            raise archive.error(str(error)) from None
        except (RecursionError, MemoryError):
            raise archive.error("code nests too deeply to read") from None
    if not isinstance(data, Record):
        raise archive.error("data.pkl does not hold a scripted module")
    if not isinstance(constants, (tuple, list)):
        constants = ()
    flags = _module_flags(data)
    interpreter = Interpreter(code, constants)
    scope_count = 0
    try:
        for method in _root_methods(code, data):
            scope_count += 1
            interpreter.run_method(data, method, method.tree.name)
    except InterpretError as error:
        raise archive.error(str(error)) from None
    except (RecursionError, MemoryError):
        raise archive.error("code nests too deeply to read") from None
    views = _views(interpreter, wanted, sources)
    notes = ()
    if interpreter.dead_branches:
        notes = (
            Note(
                "dead-branch",
                f"{interpreter.dead_branches} branch(es) on constants or saved training flags "
                "resolved; only the code that runs was checked",
            ),
        )
    return ArtifactView(
        path=path,
        kind=ArtifactKind.TORCHSCRIPT,
        nodes=tuple(views),
        modules=tuple(
            ModuleFlag(
                p,
                r.qualified_name.rsplit(".", 1)[-1],
                bool(r.attributes["training"]),
                _reads_training(code, r.qualified_name),
            )
            for p, r in flags
        ),
        notes=notes,
        node_count=len(interpreter.nodes),
        scope_count=scope_count,
        unsafe_content=tuple(unsafe),
    )


def _reads_training(code: CodeIndex, qualified_name: str) -> bool:
    """Whether a saved module may compute differently by its flag: its methods read a
    `training` attribute, or it is not one of torch's own classes. A traced module's code never
    reads the flag, its branches resolved when it was traced; for torch's layers the graph
    rules judge those branches (dropout and batch norm in training mode are explicit ops), for
    the user's layers the flag is the only trace of the mode they ran in."""
    if not qualified_name.startswith("__torch__.torch."):
        return True
    cls = code.classes.get(qualified_name)
    if cls is None:
        return True
    return any(
        isinstance(node, ast.Attribute) and node.attr == "training"
        for method in cls.methods.values()
        for node in ast.walk(method.tree)
    )


def _root_methods(code: CodeIndex, root: Record) -> list[Function]:
    cls = code.classes.get(root.qualified_name)
    if cls is None:
        return []
    return [
        method
        for name, method in cls.methods.items()
        if not (name.startswith("__") and name.endswith("__"))
    ]


def _views(interpreter: Interpreter, wanted: frozenset[str], sources: SourceMap) -> list[NodeView]:
    by_scope: dict[str, list[RawNode]] = {}
    for node in interpreter.nodes:
        by_scope.setdefault(node.scope.split("/", 1)[0], []).append(node)
    views: list[NodeView] = []
    for scope, nodes in by_scope.items():

        def build(nodes: list[RawNode] = nodes) -> list[NodeView]:
            return [_view(interpreter, n, None, None) for n in nodes]

        index = NodeListIndex(scope, build)
        views.extend(_view(interpreter, n, index, sources) for n in nodes if n.op in wanted)
    views.sort(key=lambda v: int(v.name[1:].split(".")[0]))
    return views


class _ScriptNodeView(NodeView):
    """A NodeView that looks its source up in the archive's debug info on first use: only
    nodes a finding points at pay for decoding it."""

    __slots__ = ("_location", "_sources")

    def __init__(self, location: CallStack, sources: SourceMap | None, **fields: Any) -> None:
        super().__init__(**fields)
        self._location = location
        self._sources = sources

    def _locate(self) -> None:
        sources, self._sources = self._sources, None
        source = sources.locate(self._location) if sources is not None else None
        if source is not None:
            self._source_file, self._source_line = source.file, source.line

    @property
    def source_file(self) -> str | None:
        if self._sources is not None:
            self._locate()
        return self._source_file

    @property
    def source_line(self) -> int | None:
        if self._sources is not None:
            self._locate()
        return self._source_line


def _view(
    interpreter: Interpreter,
    node: RawNode,
    index: GraphIndex | None,
    sources: SourceMap | None,
) -> NodeView:
    return _ScriptNodeView(
        node.location,
        sources,
        kind=ArtifactKind.TORCHSCRIPT,
        scope=node.scope,
        name=node.outputs[0],
        op=node.op,
        inputs=tuple(value_names(node.positional)) + tuple(value_names(node.keywords.values())),
        outputs=tuple(node.outputs),
        args=interpreter.arguments(node),
        module=node.module or None,
        graph=index,
    )

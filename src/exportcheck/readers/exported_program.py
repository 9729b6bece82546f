"""Reads a torch.export archive (.pt2) from its program JSON: nodes, arguments by name, signature.

Nothing is unpickled, extracted or loaded: the graph, its argument names and node metadata are
in `<root>/models/<name>.json` (torch/_export/serde/schema.py). Weights are never read; the only
tensor bytes read are one-element constants that decide a `cond`.
"""

from __future__ import annotations

import json
import struct
import zipfile
from collections.abc import Iterator
from typing import Any

from exportcheck.errors import first_line
from exportcheck.readers import program_schema
from exportcheck.readers.archive import Archive, archive_root
from exportcheck.readers.restricted_pickle import MAX_TENSOR_ELEMENTS, unsafe_globals
from exportcheck.readers.source_frames import last_user_frame
from exportcheck.readers.view import (
    Arg,
    ArtifactKind,
    ArtifactView,
    GraphIndex,
    NodeListIndex,
    NodeView,
    Note,
    UnsafeContent,
)

ERROR_PREFIX = "cannot load as a torch.export program"
SUPPORTED_SCHEMA_MAJOR = 8
SUPPORTED_ARCHIVE_VERSIONS = frozenset({"0"})
# json.loads holds up to about 120 bytes per element of the worst-shaped document (a list of
# one-key objects), 60 for torch's own. Elements are counted before parsing, over all of an
# archive's JSON members together, to keep them under about 400 MB: a program of some 10,000
# nodes with their stack traces.
MAX_JSON_BYTES = 64 << 20
MAX_JSON_ELEMENTS = 3_000_000
_PASS_THROUGH = frozenset(
    {"aten::lift_fresh_copy", "aten::detach_", "aten::detach", "aten::clone", "aten::alias"}
)
# Pickles torch.export.load would unpickle are scanned with pickletools, at about 1.5 MB/s for
# the worst opcode streams: beyond these, what is left unscanned is reported, never trusted.
MAX_PICKLE_SCAN_BYTES = 4 << 20
MAX_PICKLES_SCANNED = 256
MAX_NESTED_PICKLES = 4
# Sizes are checked before they are multiplied: a dimension above this (2**62) is no real
# tensor's, and the product stops at MAX_TENSOR_ELEMENTS.
MAX_DIMENSION = 1 << 62
# Arguments the rules judge by value, with the kinds aten's schemas give them: another kind (a
# dropout rate as a string) is a damaged file, not a finding. `p` is a float only in dropouts.
_NUMBER_KINDS = frozenset({"as_float", "as_int", "as_sym_float", "as_sym_int", "as_none"})
_BOOL_KINDS = frozenset({"as_bool", "as_sym_bool", "as_none"})
_RULE_ARGUMENTS = {
    "train": _BOOL_KINDS,
    "training": _BOOL_KINDS,
    "use_input_stats": _BOOL_KINDS,
    "dropout": _NUMBER_KINDS,
    "momentum": _NUMBER_KINDS,
}
_DROPOUT_ARGUMENTS = {**_RULE_ARGUMENTS, "p": _NUMBER_KINDS}
# ScalarType codes of the serialized schema -> struct format of one element.
_SCALAR_FORMATS = {1: "B", 2: "b", 3: "h", 4: "i", 5: "q", 7: "f", 8: "d", 12: "?"}
_TORCH_DTYPE_BYTES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 2, 7: 4, 8: 8, 12: 1, 13: 2}


def op_key(target: str) -> str:
    """`aten::dropout` for `torch.ops.aten.dropout.default`, the TorchScript spelling."""
    if target.startswith("torch.ops."):
        parts = target.split(".")
        if len(parts) >= 4:
            return f"{parts[2]}::{parts[3]}"
    return f"call_function:{target}"


def module_path(stack: str | None) -> str | None:
    """The innermost module path of a serialized `nn_module_stack` (`key,path,type;...`)."""
    if not stack:
        return None
    last = stack.rsplit(";", 1)[-1]
    parts = _split_top_level(last)
    if len(parts) != 3:
        return None
    return parts[1] or None


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    start = depth = 0
    for position, char in enumerate(text):
        if char in "[(":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:position])
            start = position + 1
    parts.append(text[start:])
    return parts


def _tensor_names(argument: Any) -> Iterator[str]:
    if not isinstance(argument, dict):
        return
    for kind, value in argument.items():
        if kind == "as_tensor" and isinstance(value, dict):
            yield str(value.get("name", ""))
        elif kind in ("as_tensors", "as_optional_tensors") and isinstance(value, list):
            for item in value:
                if isinstance(item, dict) and "name" in item:
                    yield str(item["name"])
                elif isinstance(item, dict):
                    yield from _tensor_names(item)
        elif kind in ("as_sym_int", "as_sym_bool", "as_sym_float") and isinstance(value, dict):
            if "as_name" in value:
                yield str(value["as_name"])


def _argument(argument: Any) -> Arg:
    if not isinstance(argument, dict) or len(argument) != 1:
        return Arg.dynamic("an argument of an unknown form")
    [(kind, value)] = argument.items()
    if kind == "as_none":
        return Arg.const(None, source="constant")
    if kind == "as_tensor":
        return Arg.dynamic(f"node {value.get('name') if isinstance(value, dict) else value}")
    if kind == "as_float":
        return Arg.const(program_schema.json_float(value), source="constant")
    if kind in ("as_int", "as_bool", "as_string", "as_scalar_type"):
        return Arg.const(value, source="constant")
    if kind == "as_floats" and isinstance(value, list):
        return Arg.const(tuple(map(program_schema.json_float, value)), source="constant")
    if kind in ("as_ints", "as_floats", "as_bools", "as_strings"):
        return Arg.const(tuple(value) if isinstance(value, list) else value, source="constant")
    if kind in ("as_sym_int", "as_sym_bool", "as_sym_float") and isinstance(value, dict):
        for constant in ("as_int", "as_bool", "as_float"):
            if constant in value:
                return Arg.const(program_schema.json_float(value[constant]), source="constant")
        return Arg.dynamic(f"symbol {value.get('as_name')}")
    if kind == "as_graph":
        return Arg.dynamic(f"subgraph {value.get('name') if isinstance(value, dict) else ''}")
    return Arg.dynamic(f"{kind} value")


class _ProgramReader:
    """Walks a program's graphs, following only the taken branch of a constant `cond`."""

    def __init__(self, wanted: frozenset[str], constants: dict[str, bool | int | float]) -> None:
        self.wanted = wanted
        self.constants = constants
        self.views: list[NodeView] = []
        self.node_count = 0
        self.scope_count = 0
        self.notes: list[Note] = []

    def read_graph(self, graph: dict, scope: str, where: str, depth: int = 0) -> None:
        """`where`: the graph's path in the program JSON, for errors."""
        if depth > 64:
            raise ValueError("cond subgraphs nest more than 64 deep")
        nodes = graph.get("nodes") or []
        if not isinstance(nodes, list):
            raise ValueError("graph nodes are not a list")
        self.scope_count += 1
        self.node_count += len(nodes)
        known = dict(self.constants)

        def build(nodes: list = nodes, scope: str = scope) -> list[NodeView]:
            return [_view(n, scope, None) for n in nodes]

        index = NodeListIndex(scope, build)
        for position, node in enumerate(nodes):
            if not isinstance(node, dict):
                raise ValueError("a graph node is not an object")
            target = str(node.get("target", ""))
            op = op_key(target)
            if op.startswith("aten::"):
                _check_rule_arguments(node, op, f"{where}.nodes[{position}]")
            inputs = node.get("inputs") or []
            if op in _PASS_THROUGH and inputs:
                source = next(_tensor_names(inputs[0].get("arg")), None)
                if source in known:
                    for output in _output_names(node):
                        known[output] = known[source]
            if op == "higher_order::cond":
                self._read_cond(node, scope, known, f"{where}.nodes[{position}]", depth)
                continue
            if op in self.wanted:
                self.views.append(_view(node, scope, index))

    def _read_cond(self, node: dict, scope: str, known: dict, where: str, depth: int) -> None:
        inputs = node.get("inputs") or []
        graphs = [
            (i["arg"]["as_graph"], f"{where}.inputs[{position}].arg.as_graph.graph")
            for position, i in enumerate(inputs)
            if isinstance(i, dict) and isinstance(i.get("arg"), dict) and "as_graph" in i["arg"]
        ]
        predicate = _predicate(inputs[0].get("arg") if inputs else None, known)
        if len(graphs) != 2:
            raise ValueError("a cond without two branch graphs")
        if predicate is None:
            chosen = graphs
        else:
            chosen = [graphs[0] if predicate else graphs[1]]
            self.notes.append(
                Note(
                    "dead-branch",
                    f"cond {node.get('name', '')} has a constant predicate ({predicate}): "
                    f"only {chosen[0][0].get('name')} runs",
                    scope=scope,
                )
            )
        for graph, graph_where in chosen:
            name = str(graph.get("name", "subgraph"))
            self.read_graph(graph.get("graph") or {}, name, graph_where, depth + 1)


def _check_rule_arguments(node: dict, op: str, where: str) -> None:
    """Raises ShapeError for a rule-read argument of a kind aten never gives it (the node is
    shape-checked: each input is a named, one-member argument)."""
    expected = _DROPOUT_ARGUMENTS if "dropout" in op else _RULE_ARGUMENTS
    for position, item in enumerate(node["inputs"]):
        kinds = expected.get(item["name"])
        if kinds is None or not kinds.isdisjoint(item["arg"]):
            continue
        wanted = "a number" if kinds is _NUMBER_KINDS else "a boolean"
        raise program_schema.ShapeError(
            f"{where}.inputs[{position}].arg",
            f"{wanted} for argument {item['name']!r} of {op}",
            next(iter(item["arg"])),
        )


def _predicate(argument: Any, known: dict) -> bool | None:
    if not isinstance(argument, dict):
        return None
    if "as_bool" in argument:
        return bool(argument["as_bool"])
    name = next(_tensor_names(argument), None)
    if name in known:
        return bool(known[name])
    return None


def _output_names(node: dict) -> list[str]:
    names: list[str] = []
    for output in node.get("outputs") or []:
        names.extend(_tensor_names(output))
    return names


def _view(node: dict, scope: str, index: GraphIndex | None) -> NodeView:
    target = str(node.get("target", ""))
    args: dict[str, Arg] = {}
    inputs: list[str] = []
    for position, item in enumerate(node.get("inputs") or []):
        if not isinstance(item, dict):
            continue
        argument = item.get("arg")
        args[str(item.get("name") or f"arg{position}")] = _argument(argument)
        inputs.extend(_tensor_names(argument))
    outputs = _output_names(node)
    metadata = node.get("metadata") or {}
    if not isinstance(metadata, dict):
        metadata = {}
    stack_trace = metadata.get("stack_trace")
    frame = last_user_frame(stack_trace) if isinstance(stack_trace, str) else None
    name = node.get("name") or (outputs[0] if outputs else target)
    return NodeView(
        kind=ArtifactKind.EXPORTED_PROGRAM,
        scope=scope,
        name=str(name),
        op=op_key(target),
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        args=args,
        module=module_path(metadata.get("nn_module_stack")),
        graph=index,
        source_file=frame[0] if frame is not None else None,
        source_line=frame[1] if frame is not None else None,
    )


class _JsonBudget:
    """The JSON elements an archive's members may still hold, counted before each is parsed."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self.elements = MAX_JSON_ELEMENTS

    def load(self, name: str) -> Any:
        data = self.archive.read(name, MAX_JSON_BYTES)
        # An upper bound (separators inside strings count too), at memchr speed.
        elements = sum(data.count(mark) for mark in (b",", b":", b"[", b"{"))
        if elements > self.elements:
            raise self.archive.error(
                f"{name} holds about {elements} JSON elements, past the budget of "
                f"{MAX_JSON_ELEMENTS} for the archive"
            )
        self.elements -= elements
        try:
            # Decoded first so the bytes are freed before the parse builds its objects.
            text = data.decode("utf-8")
            del data
            return json.loads(text)
        except RecursionError:
            # The C scanner counts its recursion and raises; it does not overflow the stack.
            raise self.archive.error(f"{name} nests too deeply to read") from None
        except (ValueError, MemoryError) as error:
            raise self.archive.error(f"{name} is not valid JSON ({first_line(error)})") from None


def _check_versions(archive: Archive, root: str, program: dict, model_name: str) -> None:
    version_member = f"{root}archive_version"
    if version_member in archive.names:
        version = archive.read(version_member, 64).decode("ascii", "replace").strip()
        if version not in SUPPORTED_ARCHIVE_VERSIONS:
            raise archive.error(
                f"archive_version {version!r} is newer than this exportcheck reads "
                f"(it reads {', '.join(sorted(SUPPORTED_ARCHIVE_VERSIONS))})"
            )
    schema = program.get("schema_version")
    try:
        program_schema.check(schema, program_schema.SCHEMA_VERSION, "schema_version")
    except program_schema.ShapeError as error:
        raise archive.error(f"{model_name}: {error}") from None
    major, minor = schema["major"], schema["minor"]
    if major != SUPPORTED_SCHEMA_MAJOR:
        saved = program.get("torch_version")
        saved = saved[:40] if isinstance(saved, str) else "an unknown torch"
        raise archive.error(
            f"{model_name} has schema version {major}.{minor} (saved by torch {saved}); "
            f"this exportcheck reads schema {SUPPORTED_SCHEMA_MAJOR}.x"
        )


def _declared_elements(meta: Any) -> int:
    """The element count of a (shape-checked) TensorMeta's constant sizes, at most
    MAX_TENSOR_ELEMENTS + 1: each size is checked before it is multiplied, the product stops
    at the bound. Symbolic sizes count as 1."""
    sizes = meta.get("sizes", []) if isinstance(meta, dict) else []
    values = [size.get("as_int", 1) for size in sizes]
    for position, value in enumerate(values):
        if not 0 <= value <= MAX_DIMENSION:
            raise ValueError(
                f"size {position} out of range ({'negative' if value < 0 else 'huge'})"
            )
    if 0 in values:
        return 0
    count = 1
    for value in values:
        count *= value
        if count > MAX_TENSOR_ELEMENTS:
            return MAX_TENSOR_ELEMENTS + 1
    return count


def _check_weights(
    archive: Archive, member: str, unsafe: list[UnsafeContent], budget: _JsonBudget
) -> dict:
    """The weights/constants config, with declared sizes bounded by the bytes the archive holds."""
    if member not in archive.names:
        return {}
    config = budget.load(member)
    try:
        program_schema.check(config, program_schema.PAYLOAD_CONFIG)
    except program_schema.ShapeError as error:
        raise archive.error(f"{member}: {error}") from None
    entries = config["config"]
    folder = member.rsplit("/", 1)[0] + "/"
    for name, entry in entries.items():
        label = repr(name[:80])
        try:
            elements = _declared_elements(entry.get("tensor_meta"))
        except ValueError as error:
            raise archive.error(f"weight {label}: {error}") from None
        if elements > MAX_TENSOR_ELEMENTS:
            raise archive.error(f"weight {label} declares more than {MAX_TENSOR_ELEMENTS} elements")
        if entry.get("use_pickle"):
            unsafe.append(
                UnsafeContent(
                    f"{folder}{entry.get('path_name')}",
                    f"weight {label} is stored as a pickle (use_pickle), which "
                    "torch.export.load unpickles with weights_only=False",
                )
            )
            continue
        meta = entry.get("tensor_meta") or {}
        path = f"{folder}{entry.get('path_name')}"
        width = _TORCH_DTYPE_BYTES.get(meta.get("dtype") if isinstance(meta, dict) else None, 1)
        if path in archive.names and elements * width > archive.size(path) > 0:
            raise archive.error(
                f"weight {label} declares {elements} elements but its member holds "
                f"{archive.size(path)} bytes"
            )
    return entries


def _constant_scalars(archive: Archive, root: str, entries: dict, program: dict) -> dict:
    """Lifted one-element constants (`torch.tensor(False)` as a cond predicate), by graph name."""
    by_constant: dict[str, bool | int | float] = {}
    for name, entry in entries.items():
        meta = entry.get("tensor_meta") if isinstance(entry, dict) else None
        if not isinstance(meta, dict) or entry.get("use_pickle"):
            continue
        code = _SCALAR_FORMATS.get(meta.get("dtype"))
        path = f"{root}data/constants/{entry.get('path_name')}"
        if code is None or _declared_elements(meta) != 1 or path not in archive.names:
            continue
        data = archive.read(path, 16)
        if len(data) >= struct.calcsize(code):
            by_constant[name] = struct.unpack_from(f"<{code}", data)[0]
    graph_names: dict[str, bool | int | float] = {}
    signature = program.get("graph_module", {}).get("signature", {})
    for spec in signature.get("input_specs", []) or []:
        constant = spec.get("tensor_constant") if isinstance(spec, dict) else None
        if isinstance(constant, dict) and constant.get("tensor_constant_name") in by_constant:
            graph_name = constant.get("arg", {}).get("name")
            graph_names[graph_name] = by_constant[constant["tensor_constant_name"]]
    return graph_names


class _PickleBudget:
    """How many members and bytes the pickle scan may still take, across the whole archive."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self.members = MAX_PICKLES_SCANNED
        self.bytes = MAX_PICKLE_SCAN_BYTES

    def enter(self, member: str) -> None:
        """Counts one member scanned: a pickle, or a zip whose pickles are scanned."""
        if self.members == 0:
            raise self.archive.error(
                f"more than {MAX_PICKLES_SCANNED} pickles and pickle archives to scan "
                f"(at {member!r})"
            )
        self.members -= 1

    def limit(self, member: str, size: int) -> int:
        """The read limit for a pickle of `size` declared bytes, if the budget has room."""
        if size > self.bytes:
            raise self.archive.error(
                f"pickle {member!r} of {size} bytes is past the {MAX_PICKLE_SCAN_BYTES}-byte "
                "budget for scanning the archive's pickles"
            )
        return self.bytes

    def spend(self, size: int) -> None:
        self.bytes -= size


def _scan_pickles(archive: Archive, root: str, unsafe: list[UnsafeContent]) -> None:
    """Pickles torch.export.load would unpickle (sample inputs, pickled weights), scanned only,
    within one budget of pickles and bytes for the archive."""
    budget = _PickleBudget(archive)
    for name in archive.names:
        if not name.startswith(f"{root}data/") or name.endswith(".json"):
            continue
        if "/sample_inputs/" not in name and not name.endswith((".pkl", ".pt")):
            continue
        for member, data in _pickles_in(archive, name, budget):
            budget.spend(len(data))
            try:
                bad = unsafe_globals(data)
            except ValueError as error:
                unsafe.append(UnsafeContent(member, f"a pickle pickletools cannot read ({error})"))
                continue
            if bad:
                unsafe.append(UnsafeContent(member, f"a pickle that imports {', '.join(bad[:5])}"))


def _pickles_in(archive: Archive, name: str, budget: _PickleBudget) -> Iterator[tuple[str, bytes]]:
    """The member's pickle, or for a torch.save zip its `.pkl` members, read one at a time from
    the nested archive (opened with the outer one's bounds)."""
    budget.enter(name)
    if archive.head(name, 2) != b"PK":
        yield name, archive.read(name, budget.limit(name, archive.size(name)))
        return
    with archive.nested(name) as inner:
        pickles = [n for n in inner.names if n.endswith(".pkl")]
        if len(pickles) > MAX_NESTED_PICKLES:
            raise archive.error(
                f"member {name!r} holds {len(pickles)} pickles (torch.save writes one; "
                f"more than {MAX_NESTED_PICKLES} are not scanned)"
            )
        for pickle in pickles:
            member = f"{name}!{pickle}"
            budget.enter(member)
            yield member, inner.read(pickle, budget.limit(member, inner.size(pickle)))


def read_exported_program(
    path: str, wanted: frozenset[str], opened: zipfile.ZipFile | None = None
) -> ArtifactView:
    """`opened`: the file already opened as a zip, handed over (see Archive)."""
    with Archive(path, ERROR_PREFIX, opened) as archive:
        root = archive_root(archive.names)
        models = sorted(
            n for n in archive.names if n.startswith(f"{root}models/") and n.endswith(".json")
        )
        if not models:
            raise archive.error("no models/*.json program in the archive")
        unsafe = [UnsafeContent(m.name, m.reason) for m in archive.unsafe_members()]
        _scan_pickles(archive, root, unsafe)
        weights = f"{root}data/weights/model_weights_config.json"
        constants_member = f"{root}data/constants/model_constants_config.json"
        budget = _JsonBudget(archive)
        _check_weights(archive, weights, unsafe, budget)
        constant_entries = _check_weights(archive, constants_member, unsafe, budget)
        views: list[NodeView] = []
        notes: list[Note] = []
        mutated: list[str] = []
        node_count = scope_count = 0
        for member in models:
            program = budget.load(member)
            if not isinstance(program, dict) or not isinstance(program.get("graph_module"), dict):
                raise archive.error(f"{member} is not a serialized ExportedProgram")
            _check_versions(archive, root, program, member.rsplit("/", 1)[-1])
            try:
                program_schema.check(program, program_schema.EXPORTED_PROGRAM)
            except program_schema.ShapeError as error:
                raise archive.error(f"{member}: {error}") from None
            constants = _constant_scalars(archive, root, constant_entries, program)
            reader = _ProgramReader(wanted, constants)
            graph_module = program["graph_module"]
            try:
                reader.read_graph(graph_module["graph"], "main", "graph_module.graph")
                mutated.extend(_mutated_buffers(graph_module["signature"]))
            except program_schema.ShapeError as error:
                raise archive.error(f"{member}: {error}") from None
            except (ValueError, TypeError, AttributeError, KeyError, IndexError) as error:
                raise archive.error(f"{member} is malformed ({first_line(error)})") from None
            views.extend(reader.views)
            notes.extend(reader.notes)
            node_count += reader.node_count
            scope_count += reader.scope_count
    return ArtifactView(
        path=path,
        kind=ArtifactKind.EXPORTED_PROGRAM,
        nodes=tuple(views),
        mutated_buffers=tuple(mutated),
        notes=tuple(notes),
        node_count=node_count,
        scope_count=scope_count,
        unsafe_content=tuple(unsafe),
    )


def _mutated_buffers(signature: dict) -> list[str]:
    names: list[str] = []
    for spec in signature.get("output_specs") or []:
        mutation = spec.get("buffer_mutation") if isinstance(spec, dict) else None
        if isinstance(mutation, dict) and mutation.get("buffer_name"):
            names.append(str(mutation["buffer_name"]))
    return names

"""Hostile .pt2 archives against the reader's budgets and its schema check.

Each case is a real torch.export archive (the train-mode CNN of conftest) with one part
rewritten by hand where the exporter cannot produce it: declared sizes whose product explodes,
zips nested in members that inflate to gigabytes, program fields of the wrong type, stack traces
with absurd line numbers. Every worst case runs `exportcheck inspect` in a process of its own:
under 10 s and 500 MB, exit 0, 1 or 2, one line naming the file when it is an input error.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from exportcheck.errors import UnreadableArtifactError
from exportcheck.graph_checks import inspect_artifact
from tests.hostile.conftest import assert_bounded
from tests.hostile.test_corpus import _rewrite_zip

MODEL_JSON = "/models/model.json"
WEIGHTS_CONFIG = "/data/weights/model_weights_config.json"
CONSTANTS_CONFIG = "/data/constants/model_constants_config.json"
SAMPLE_INPUTS = "/data/sample_inputs/model.pt"


def edit_json(seed: bytes, suffix: str, edit: Callable[[Any], Any]) -> bytes:
    """The archive with the JSON member ending in `suffix` changed by `edit` (which changes the
    document in place or returns a new one)."""

    def change(name: str, data: bytes) -> bytes:
        if not name.endswith(suffix):
            return data
        document = json.loads(data)
        edited = edit(document)
        return json.dumps(document if edited is None else edited).encode()

    return _rewrite_zip(seed, change)


def replace_member(
    seed: bytes, suffix: str, data: bytes, method: int = zipfile.ZIP_STORED
) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(seed)) as old, zipfile.ZipFile(out, "w") as new:
        for name in old.namelist():
            if name.endswith(suffix):
                new.writestr(name, data, compress_type=method)
            else:
                new.writestr(name, old.read(name))
    return out.getvalue()


def add_members(seed: bytes, members: dict[str, bytes]) -> bytes:
    root = zipfile.ZipFile(io.BytesIO(seed)).namelist()[0].split("/", 1)[0]
    out = io.BytesIO(seed)
    with zipfile.ZipFile(out, "a") as archive:
        for name, data in members.items():
            archive.writestr(f"{root}/{name}", data)
    return out.getvalue()


def deflated_zip(members: list[tuple[str, int]]) -> bytes:
    """A zip of members holding `size` zero bytes each, written from one deflate of the largest
    (compressing 2.6 GB once per member would take a minute)."""
    streams: dict[int, tuple[bytes, int]] = {}
    local = io.BytesIO()
    central = io.BytesIO()
    for name, size in members:
        if size not in streams:
            compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
            zeros = bytes(size)
            streams[size] = (compressor.compress(zeros) + compressor.flush(), zlib.crc32(zeros))
        data, crc = streams[size]
        encoded = name.encode()
        offset = local.tell()
        fields = (20, 0, 8, 0, 0, crc, len(data), size, len(encoded), 0)
        local.write(b"PK\x03\x04" + struct.pack("<HHHHHIIIHH", *fields) + encoded + data)
        central.write(
            b"PK\x01\x02"
            + struct.pack("<HHHHHHIIIHHHHHII", 20, *fields, 0, 0, 0, 0, offset)
            + encoded
        )
    directory = central.getvalue()
    count = len(members)
    end = struct.pack(
        "<4sHHHHIIH", b"PK\x05\x06", 0, 0, count, count, len(directory), local.tell(), 0
    )
    return local.getvalue() + directory + end


def stored_zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def dropout_node(program: dict) -> dict:
    return next(
        node
        for node in program["graph_module"]["graph"]["nodes"]
        if node["target"].startswith("torch.ops.aten.dropout")
    )


def set_argument(name: str, argument: Any) -> Callable[[dict], None]:
    def edit(program: dict) -> None:
        for item in dropout_node(program)["inputs"]:
            if item["name"] == name:
                item["arg"] = argument

    return edit


def first_weight(edit: Callable[[dict], None]) -> Callable[[dict], None]:
    def change(config: dict) -> None:
        edit(next(iter(config["config"].values()))["tensor_meta"])

    return change


def with_constant(meta_sizes: list) -> Callable[[dict], None]:
    def change(config: dict) -> None:
        config["config"]["c0"] = {
            "path_name": "c0",
            "is_param": False,
            "use_pickle": False,
            "tensor_meta": {"dtype": 7, "sizes": meta_sizes, "requires_grad": False},
        }

    return change


def stack_traces(trace: str) -> Callable[[dict], None]:
    def edit(program: dict) -> None:
        for node in program["graph_module"]["graph"]["nodes"]:
            node["metadata"]["stack_trace"] = trace

    return edit


@dataclass(frozen=True)
class Hostile:
    """One hostile archive: how to make it from the seed, and the cause an input error names
    (None: the file is read, findings or not)."""

    name: str
    build: Callable[[bytes], bytes]
    cause: str | None


def _program(edit: Callable[[Any], Any]) -> Callable[[bytes], bytes]:
    return lambda seed: edit_json(seed, MODEL_JSON, edit)


def _pop(*path: str) -> Callable[[dict], None]:
    def edit(program: dict) -> None:
        parent = program
        for key in path[:-1]:
            parent = parent[key]
        del parent[path[-1]]

    return edit


def _put(value: Any, *path: str) -> Callable[[dict], None]:
    def edit(program: dict) -> None:
        parent = program
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = value

    return edit


BIG = 2**62
LINE = "9" * 5000
SIZE_CASES = [
    Hostile(
        "program-of-4-million-tiny-objects",
        _program(_put([{"a": 1000}] * 2_000_000, "verifiers")),
        "past the budget of 3000000 for the archive",
    ),
    Hostile(
        "program-of-100MB",
        _program(stack_traces(f'  File "/user/model.py", line {LINE}, in f\n' * 2000)),
        "limit 67108864",
    ),
    Hostile(
        "sizes-1e6-times-50",
        lambda s: edit_json(
            s, WEIGHTS_CONFIG, first_weight(_put([{"as_int": 10**6}] * 50, "sizes"))
        ),
        "declares more than 1099511627776 elements",
    ),
    Hostile(
        "sizes-2e62-times-100000",
        lambda s: edit_json(s, CONSTANTS_CONFIG, with_constant([{"as_int": BIG}] * 100_000)),
        "declares more than 1099511627776 elements",
    ),
    Hostile(
        "sizes-4000-digits-times-3000",
        lambda s: edit_json(
            s, WEIGHTS_CONFIG, first_weight(_put([{"as_int": 10**4000}] * 3000, "sizes"))
        ),
        "sizes[0].as_int: expected a 64-bit integer, got an integer beyond 64 bits",
    ),
    Hostile(
        "sizes-negative",
        lambda s: edit_json(s, WEIGHTS_CONFIG, first_weight(_put([{"as_int": -1}], "sizes"))),
        "size 0 out of range (negative)",
    ),
    # A zero among huge sizes is an empty tensor, as torch reads it: not refused.
    Hostile(
        "sizes-huge-with-a-zero",
        lambda s: edit_json(
            s, CONSTANTS_CONFIG, with_constant([{"as_int": BIG}] * 10_000 + [{"as_int": 0}])
        ),
        None,
    ),
]

NESTED_CASES = [
    Hostile(
        "nested-40-pickles-of-64MB",  # 2.6 GB from a 2.6 MB file
        lambda s: replace_member(
            s, SAMPLE_INPUTS, deflated_zip([(f"m/data{i}.pkl", 64 << 20) for i in range(40)])
        ),
        "a zip bomb?",
    ),
    Hostile(
        "nested-in-a-deflated-member",
        lambda s: replace_member(
            s,
            SAMPLE_INPUTS,
            deflated_zip([("m/data.pkl", 300 << 20)]),
            method=zipfile.ZIP_DEFLATED,
        ),
        "a zip bomb?",
    ),
    Hostile(
        "nested-pickle-within-ratio-past-budget",
        lambda s: replace_member(s, SAMPLE_INPUTS, deflated_zip([("m/data.pkl", 60 << 20)])),
        "budget for scanning the archive's pickles",
    ),
    Hostile(
        "nested-member-climbs-out",
        lambda s: replace_member(s, SAMPLE_INPUTS, stored_zip({"../../data.pkl": b"N."})),
        "climbs out of the archive folder",
    ),
    Hostile(
        "nested-five-pickles",
        lambda s: replace_member(
            s, SAMPLE_INPUTS, stored_zip({f"m/{i}.pkl": b"N." for i in range(5)})
        ),
        "holds 5 pickles",
    ),
    Hostile(
        "three-hundred-pickle-archives",
        lambda s: add_members(
            s,
            {f"data/sample_inputs/x{i}.pt": stored_zip({"m/data.pkl": b"N."}) for i in range(300)},
        ),
        "more than 256 pickles and pickle archives",
    ),
    Hostile(
        "nested-zip-is-damaged",
        lambda s: replace_member(s, SAMPLE_INPUTS, b"PK\x03\x04" + bytes(200)),
        "not a zip archive",
    ),
    # 150,000 empty members: within the member bound, read in bounded time.
    Hostile(
        "nested-150000-members",
        lambda s: replace_member(
            s, SAMPLE_INPUTS, stored_zip({f"m/{i}": b"" for i in range(150_000)})
        ),
        None,
    ),
]

FIELD_CASES = [
    Hostile(
        "null-signature",
        _program(_put(None, "graph_module", "signature")),
        "graph_module.signature: expected an object, got null",
    ),
    Hostile(
        "signature-missing",
        _program(_pop("graph_module", "signature")),
        "graph_module.signature: expected an object, got nothing (missing)",
    ),
    Hostile(
        "output-specs-a-string",
        _program(_put("x", "graph_module", "signature", "output_specs")),
        "graph_module.signature.output_specs: expected a list, got a string",
    ),
    Hostile(
        "tensor-sizes-an-integer",
        _program(_put(4, "graph_module", "graph", "tensor_values", "x", "sizes")),
        ".sizes: expected a list, got an integer",
    ),
    Hostile(
        "weight-sizes-an-integer",
        lambda s: edit_json(s, WEIGHTS_CONFIG, first_weight(_put(4, "sizes"))),
        "tensor_meta.sizes: expected a list, got an integer",
    ),
    Hostile(
        "dropout-rate-a-string-as-float",
        _program(set_argument("p", {"as_float": "0.5"})),
        ".arg.as_float: expected a number, got a string",
    ),
    Hostile(
        "dropout-rate-as-string",
        _program(set_argument("p", {"as_string": "0.5"})),
        "expected a number for argument 'p' of aten::dropout, got as_string",
    ),
    Hostile(
        "dropout-train-as-int",
        _program(set_argument("train", {"as_int": 1})),
        "expected a boolean for argument 'train' of aten::dropout, got as_int",
    ),
    Hostile(
        "recurrent-dropout-as-string",
        _program(
            lambda p: dropout_node(p)["inputs"].append(
                {"name": "dropout", "arg": {"as_string": "0.5"}, "kind": 1}
            )
        ),
        "expected a number for argument 'dropout' of aten::dropout, got as_string",
    ),
    Hostile(
        "int-beyond-64-bits",
        _program(set_argument("train", {"as_int": 10**4000})),
        "as_int: expected a 64-bit integer, got an integer beyond 64 bits",
    ),
    Hostile(
        "argument-with-two-members",
        _program(set_argument("p", {"as_float": 0.5, "as_int": 1})),
        "expected an object of one member, got an object",
    ),
    Hostile(
        "nodes-null",
        _program(_put(None, "graph_module", "graph", "nodes")),
        "graph_module.graph.nodes: expected a list, got null",
    ),
    Hostile(
        "metadata-values-not-strings",
        _program(lambda p: dropout_node(p).__setitem__("metadata", {"stack_trace": 5})),
        "metadata.stack_trace: expected a string, got an integer",
    ),
    Hostile(
        "schema-version-huge",
        _program(_put({"major": 10**4000, "minor": 0}, "schema_version")),
        "schema_version.major: expected a 64-bit integer, got an integer beyond 64 bits",
    ),
    Hostile(
        "torch-version-megabytes",
        _program(
            lambda p: p.update(schema_version={"major": 99, "minor": 0}, torch_version="x" * 10**7)
        ),
        "has schema version 99.0",
    ),
    Hostile(
        "weights-config-null",
        lambda s: edit_json(s, WEIGHTS_CONFIG, lambda config: {"config": None}),
        "config: expected an object, got null",
    ),
]

LINE_CASES = [
    Hostile(
        "stack-trace-line-of-5000-digits",
        _program(stack_traces(f'File "/user/model.py", line {LINE}, in forward\n    x\n')),
        None,
    ),
    Hostile(
        "stack-trace-200-frames-of-huge-lines",
        _program(stack_traces(f'  File "/user/model.py", line {LINE}, in f\n' * 200)),
        None,
    ),
]

CASES = SIZE_CASES + NESTED_CASES + FIELD_CASES + LINE_CASES


@pytest.fixture(scope="module")
def built(exported_pt2: bytes, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every case's file, written lazily on first use (the nested bombs take a second)."""
    folder = tmp_path_factory.mktemp("pt2-budgets")

    class Files(dict):
        def __missing__(self, name: str) -> Path:
            case = next(c for c in CASES if c.name == name)
            path = self[name] = folder / f"{name}.pt2"
            path.write_bytes(case.build(exported_pt2))
            return path

    return Files()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cli_ends_within_budget(case: Hostile, built: dict[str, Path]) -> None:
    measured = assert_bounded(built[case.name], case.cause)
    if case.cause is None:
        assert measured.exit_code in (0, 1), measured.stderr


@pytest.mark.parametrize("case", FIELD_CASES + SIZE_CASES[:4], ids=lambda c: c.name)
def test_library_names_the_field(case: Hostile, built: dict[str, Path]) -> None:
    with pytest.raises(UnreadableArtifactError) as raised:
        inspect_artifact(built[case.name])
    message = raised.value.message
    assert case.cause in message
    assert message.startswith("cannot load as a torch.export program: ")
    assert "\n" not in message and len(message) < 600


@pytest.mark.parametrize("case", LINE_CASES, ids=lambda c: c.name)
def test_absurd_line_numbers_drop_the_location(case: Hostile, built: dict[str, Path]) -> None:
    findings = inspect_artifact(built[case.name])
    dropout = [f for f in findings if f.rule == "training-dropout"]
    assert dropout, [f.rule for f in findings]
    for finding in findings:
        assert finding.location.source_line is None
        assert finding.location.source_file is None


def test_a_real_line_number_is_kept(exported_pt2: bytes, tmp_path: Path) -> None:
    path = tmp_path / "line.pt2"
    trace = 'File "/user/model.py", line 123456789, in forward\n    x\n'
    path.write_bytes(_program(stack_traces(trace))(exported_pt2))
    lines = {f.location.source_line for f in inspect_artifact(path) if f.rule == "training-dropout"}
    assert lines == {123456789}


def test_the_seed_is_read(exported_pt2: bytes, tmp_path: Path) -> None:
    """The unmodified export: findings, no error (the schema check accepts what torch writes)."""
    path = tmp_path / "seed.pt2"
    path.write_bytes(exported_pt2)
    rules = {f.rule for f in inspect_artifact(path)}
    assert {"training-dropout", "training-batchnorm"} <= rules

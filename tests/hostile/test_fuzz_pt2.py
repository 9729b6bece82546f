"""Fuzzes the .pt2 reader with mutated real torch.export archives: each case ends in findings or
an InputError, within the time bound of test_fuzz.py.

The seed is conftest's train-mode CNN saved by torch.export.save. Mutations work on the JSON
documents (a null, a value of the wrong type, a huge number or string at any path, a deleted
key) and on the zip (members dropped, damaged, compressed, replaced by nested zips). They are
plain tuples, so a case that once failed stays here as an `@example`. Profiles as in
test_fuzz.py (EXPORTCHECK_FUZZ_PROFILE: fast, long, soak).
"""

from __future__ import annotations

import copy
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.hostile.test_fuzz import BYTE_EDIT, FUZZ, edit_bytes, run_case

DOCUMENTS = ("models/model.json", "data/weights/model_weights_config.json")
DOCUMENT = st.sampled_from(DOCUMENTS)
PATH_INDEX = st.integers(min_value=0, max_value=1 << 20)
ODD_VALUES = st.one_of(
    st.sampled_from(
        [
            None,
            True,
            0,
            -1,
            1.5,
            float("inf"),
            2**63,
            -(2**63) - 1,
            10**4000,
            "",
            "0.5",
            "9" * 5000,
            [],
            {},
            [None],
            {"as_int": 10**6},
            [{"as_int": 10**6}] * 50,
            {"as_float": "0.5"},
            {"as_string": "0.5"},
            {"as_graph": {"name": "g", "graph": None}},
            'File "/u/m.py", line ' + "9" * 5000 + ", in f\n",
        ]
    ),
    st.integers(),
    st.text(max_size=20),
    st.lists(st.integers(-(2**70), 2**70), max_size=4),
)
JSON_MUTATION = st.one_of(
    st.tuples(st.just("set"), DOCUMENT, PATH_INDEX, ODD_VALUES),
    st.tuples(st.just("delete"), DOCUMENT, PATH_INDEX),
    st.tuples(st.just("wrap"), DOCUMENT, PATH_INDEX, st.sampled_from(["list", "object"])),
    st.tuples(st.just("repeat"), DOCUMENT, PATH_INDEX, st.integers(2, 2_000)),
)
MEMBER_INDEX = st.integers(min_value=0, max_value=64)
NESTED_KIND = st.sampled_from(
    ["pickle", "many-pickles", "bad-name", "garbage", "empty-zip", "deep"]
)
ZIP_MUTATION = st.one_of(
    st.tuples(st.just("drop"), MEMBER_INDEX),
    st.tuples(st.just("member-bytes"), MEMBER_INDEX, st.lists(BYTE_EDIT, min_size=1, max_size=4)),
    st.tuples(st.just("deflate"), MEMBER_INDEX),
    st.tuples(st.just("nested"), NESTED_KIND),
    st.tuples(
        st.just("rename"), MEMBER_INDEX, st.sampled_from(["../x", "/abs", "a\\..\\b", "x.so"])
    ),
)


class Seed:
    """The seed archive as members (name -> bytes) and its root folder; a short repr keeps
    hypothesis failure reports readable."""

    def __init__(self, data: bytes) -> None:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            self.members = {name: archive.read(name) for name in archive.namelist()}
        self.root = next(iter(self.members)).split("/", 1)[0] + "/"

    def __repr__(self) -> str:
        return f"<pt2 seed of {len(self.members)} members>"


@pytest.fixture(scope="module")
def seed(exported_pt2: bytes) -> Seed:
    return Seed(exported_pt2)


@pytest.fixture(scope="module")
def case_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-pt2") / "case.pt2"


def _paths(document: Any) -> list[tuple]:
    """Every path to a value in the document, the document itself first."""
    found: list[tuple] = [()]
    pending: list[tuple[tuple, Any]] = [((), document)]
    while pending:
        path, value = pending.pop()
        items = (
            value.items()
            if isinstance(value, dict)
            else enumerate(value)
            if isinstance(value, list)
            else ()
        )
        for key, child in items:
            found.append((*path, key))
            pending.append(((*path, key), child))
    return found


def _edit_json(document: Any, mutation: tuple) -> Any:
    kind, _, index, *rest = mutation
    if isinstance(index, tuple):  # a path spelled out, as the kept examples give it
        path = index
    else:
        paths = _paths(document)
        path = paths[index % len(paths)]
    if not path:
        return copy.deepcopy(rest[0]) if kind == "set" else document
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    if kind == "set":
        parent[key] = copy.deepcopy(rest[0])  # the strategy hands out shared objects
    elif kind == "delete":
        del parent[key]
    elif kind == "wrap":
        parent[key] = [parent[key]] if rest[0] == "list" else {"x": parent[key]}
    elif kind == "repeat" and isinstance(parent, list):
        parent[key:key] = [parent[key]] * rest[0]
    return document


def _nested(kind: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        if kind == "pickle":
            archive.writestr("m/data.pkl", b"\x80\x02N.")
        elif kind == "many-pickles":
            for position in range(6):
                archive.writestr(f"m/{position}.pkl", b"N.")
        elif kind == "bad-name":
            archive.writestr("../m/data.pkl", b"N.")
        elif kind == "deep":
            archive.writestr("m/data.pkl", _nested("pickle"))
        elif kind == "garbage":
            archive.writestr("m/data.pkl", b"\xff" * 64)
    return out.getvalue()


def _pack(members: dict[str, tuple[bytes, int]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, (data, method) in members.items():
            archive.writestr(name, data, compress_type=method)
    return out.getvalue()


def mutated(seed: Seed, mutations: list[tuple]) -> bytes:
    members = {name: (data, zipfile.ZIP_STORED) for name, data in seed.members.items()}
    documents = {name: json.loads(members[seed.root + name][0]) for name in DOCUMENTS}
    repeated = False
    for mutation in mutations:
        if mutation[0] == "repeat":
            # Repeats share their item: a second one inside the first would multiply them into
            # a document too large for the harness itself to write.
            if repeated:
                continue
            repeated = True
        if mutation[0] in ("set", "delete", "wrap", "repeat"):
            documents[mutation[1]] = _edit_json(documents[mutation[1]], mutation)
    for name, document in documents.items():
        members[seed.root + name] = (json.dumps(document).encode(), zipfile.ZIP_STORED)
    for mutation in mutations:
        _edit_zip(seed, members, mutation)
    return _pack(members)


def _edit_zip(seed: Seed, members: dict[str, tuple[bytes, int]], mutation: tuple) -> None:
    kind = mutation[0]
    names = list(members)
    if not names or kind in ("set", "delete", "wrap", "repeat"):
        return
    if kind == "nested":
        members[f"{seed.root}data/sample_inputs/model.pt"] = (_nested(mutation[1]), 0)
        return
    name = names[mutation[1] % len(names)]
    if kind == "drop":
        del members[name]
    elif kind == "member-bytes":
        data, method = members[name]
        members[name] = (edit_bytes(data, mutation[2]), method)
    elif kind == "deflate":
        members[name] = (members[name][0], zipfile.ZIP_DEFLATED)
    elif kind == "rename":
        members[seed.root + mutation[2]] = members.pop(name)


@FUZZ
@given(mutations=st.lists(JSON_MUTATION, min_size=1, max_size=6))
# A null signature, sizes as an integer and a dropout rate as a string were internal errors.
@example(mutations=[("set", "models/model.json", ("graph_module", "signature"), None)])
@example(mutations=[("set", DOCUMENTS[1], ("config", "conv.weight", "tensor_meta", "sizes"), 4)])
@example(
    mutations=[
        (
            "set",
            DOCUMENTS[0],
            ("graph_module", "graph", "nodes", 5, "inputs", 1, "arg"),
            {"as_float": "x"},
        )
    ]
)
def test_json_mutations(seed, case_file, fuzz_tally, mutations) -> None:
    run_case(case_file, mutated(seed, mutations), fuzz_tally, "pt2-json")


@FUZZ
@given(mutations=st.lists(ZIP_MUTATION, min_size=1, max_size=4))
def test_zip_mutations(seed, case_file, fuzz_tally, mutations) -> None:
    run_case(case_file, mutated(seed, mutations), fuzz_tally, "pt2-zip")


@FUZZ
@given(mutations=st.lists(st.one_of(JSON_MUTATION, ZIP_MUTATION), min_size=1, max_size=6))
def test_mixed_mutations(seed, case_file, fuzz_tally, mutations) -> None:
    run_case(case_file, mutated(seed, mutations), fuzz_tally, "pt2-mixed")


@FUZZ
@given(edits=st.lists(BYTE_EDIT, min_size=1, max_size=8))
def test_byte_mutations(exported_pt2, case_file, fuzz_tally, edits) -> None:
    run_case(case_file, edit_bytes(exported_pt2, edits), fuzz_tally, "pt2-bytes")

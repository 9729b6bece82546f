"""Fuzzes the TorchScript reader with mutated real scripted archives: findings or an InputError.

The seeds are scripted modules saved once per session: a train-mode CNN, a module with its own
`__setstate__`, and a traced one (its debug info holds Python stacks). Mutations are plain
tuples on the code text (lines duplicated, swapped or dropped, names and numbers replaced,
aliases inserted), on the pickles' bytes, and on the debug info's fields. Every case must end
in findings the reporters render or in an `exportcheck.errors.InputError`, within
`HANG_SECONDS`. Profiles (tests/hostile/conftest.py): `fast` by default, `long`, and `soak`
(25,000 examples per test: 10^5 cases here) with EXPORTCHECK_FUZZ_PROFILE.
"""

from __future__ import annotations

import io
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.hostile.conftest import FUZZ_PROFILE
from tests.hostile.test_fuzz import BYTE_EDIT, edit_bytes, outcome
from tests.hostile.test_torchscript_safety import Stateful

FUZZ = settings.get_profile(FUZZ_PROFILE)


class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.drop = torch.nn.Dropout(0.5)
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv(x))).mean((2, 3))
        if self.training:
            x = torch.nn.functional.dropout(x, 0.1, True)
        return self.fc(self.drop(x))


class Seeds(dict):
    """Archives by name, each as {member: bytes}; a short repr for hypothesis reports."""

    def __repr__(self) -> str:
        return f"<scripted seeds: {', '.join(self)}>"


@pytest.fixture(scope="session")
def scripted_seeds(tmp_path_factory: pytest.TempPathFactory) -> Seeds:
    folder = tmp_path_factory.mktemp("ts-seeds")
    torch.manual_seed(0)
    net = _Net().train()
    models = {
        "script": lambda path: torch.jit.script(net).save(path),
        "setstate": lambda path: torch.jit.script(Stateful("name").eval()).save(path),
        "trace": lambda path: torch.jit.trace(
            net, (torch.randn(2, 3, 8, 8),), check_trace=False
        ).save(path),
    }
    seeds = Seeds()
    for name, save in models.items():
        path = str(folder / f"{name}.pt")
        save(path)
        with zipfile.ZipFile(path) as archive:
            seeds[name] = {member: archive.read(member) for member in archive.namelist()}
    return seeds


@pytest.fixture(scope="module")
def ts_case_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ts-fuzz") / "case.pt"


def _pick(members: dict[str, bytes], suffix: str, index: int) -> str | None:
    names = sorted(name for name in members if name.endswith(suffix))
    return names[index % len(names)] if names else None


# --- code text --------------------------------------------------------------------------------

_NAMES = [
    "torch", "ops", "self", "x", "input", "forward", "__setstate__", "from_file", "save",
    "__torch__", "CONSTANTS", "training", "annotate", "getattr", "f", "_0", "ops.aten",
    "torch.ops.aten", "unchecked_cast", "None", "True",
]  # fmt: skip
_NUMBERS = ["0", "-1", "1073741824", "9" * 400, "1e308", "2147483648", "0.5", "1.0e-300"]
_ALIASES = [
    "f = torch.from_file",
    "o = ops.aten",
    "t = torch",
    "g, f = torch.zeros, torch.save",
    "s = torch.mul('ab', 1073741824)",
    "n = torch.mul(9999999999, 9999999999)",
    "y = (self).forward(x)",
    "z = (self).__setstate__((x, True))",
    "_q = getattr(ops.aten, 'save')",
    "self = torch",
]
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
_NUMBER = re.compile(r"(?<![A-Za-z_0-9.])[0-9]+(?:\.[0-9]+)?")

CODE_MUTATION = st.one_of(
    st.tuples(st.just("duplicate-line"), st.integers(0, 9), st.integers(0, 400)),
    st.tuples(st.just("swap-lines"), st.integers(0, 9), st.integers(0, 400), st.integers(0, 400)),
    st.tuples(st.just("drop-line"), st.integers(0, 9), st.integers(0, 400)),
    st.tuples(st.just("name"), st.integers(0, 9), st.integers(0, 2000), st.sampled_from(_NAMES)),
    st.tuples(st.just("number"), st.integers(0, 9), st.integers(0, 200), st.sampled_from(_NUMBERS)),
    st.tuples(st.just("alias"), st.integers(0, 9), st.integers(0, 400), st.sampled_from(_ALIASES)),
    st.tuples(
        st.just("text"),
        st.integers(0, 9),
        st.integers(0, 1 << 16),
        st.text(alphabet=" \n\t():.,=[]'\"#\\ab_0123456789", max_size=12),
    ),
)


def _mutate_code(text: str, mutation: tuple) -> str:
    kind, *args = mutation
    lines = text.split("\n")
    if kind == "duplicate-line":
        index = args[0] % len(lines)
        lines.insert(index, lines[index])
    elif kind == "swap-lines":
        first, second = args[0] % len(lines), args[1] % len(lines)
        lines[first], lines[second] = lines[second], lines[first]
    elif kind == "drop-line":
        del lines[args[0] % len(lines)]
    elif kind in ("name", "number"):
        pattern = _IDENTIFIER if kind == "name" else _NUMBER
        found = list(pattern.finditer(text))
        if found:
            match = found[args[0] % len(found)]
            return text[: match.start()] + args[1] + text[match.end() :]
    elif kind == "alias":
        index = args[0] % len(lines)
        indent = lines[index][: len(lines[index]) - len(lines[index].lstrip(" "))]
        lines.insert(index, indent + args[1])
    elif kind == "text":
        position = args[0] % (len(text) + 1)
        return text[:position] + args[1] + text[position:]
    return "\n".join(lines)


# --- debug info fields ------------------------------------------------------------------------

ODD_VALUES = st.sampled_from(
    [None, -1, 0, 10**5000, -(10**40), 2**63, "", "x" * 1000, [], (), [10**6], (None, None, None),
     1.5, True, ("", 0, 0), (([0], 0, 10**5000), 0, 0)]
)  # fmt: skip
DEBUG_MUTATION = st.tuples(
    st.just("debug-field"),
    st.integers(0, 9),
    st.integers(0, 200),
    st.sampled_from(["offset", "range", "text", "file", "first-line", "start", "table", "all"]),
    ODD_VALUES,
)
PICKLE_MUTATION = st.tuples(
    st.just("pickle-bytes"),
    st.sampled_from(["data.pkl", "constants.pkl", ".debug_pkl"]),
    st.integers(0, 9),
    st.lists(BYTE_EDIT, min_size=1, max_size=4),
)


_RECORD_FIELDS = ("text", "file", "first-line", "start")


def _replace_debug_field(info: Any, record: int, field: str, value: Any) -> Any:
    """`info` with one field of one record replaced (unchanged where an earlier mutation left
    no such field)."""
    if field == "all":
        return value
    try:
        fmt, strings, records = info
        if field == "table":
            return (fmt, value, records)
        records = list(records)
        index = record % len(records)
        offset, (source, start, end), node = records[index]
        text, file, first = source
    except (TypeError, ValueError, ZeroDivisionError):
        return info
    if field == "offset":
        records[index] = (value, ((text, file, first), start, end), node)
    elif field == "range":
        records[index] = (offset, value, node)
    else:
        parts = dict(zip(_RECORD_FIELDS, (text, file, first, start), strict=True))
        parts[field] = value
        text, file, first, start = (parts[name] for name in _RECORD_FIELDS)
        records[index] = (offset, ((text, file, first), start, end), node)
    return (fmt, strings, tuple(records))


def mutated(seed: dict[str, bytes], mutations: list[tuple]) -> bytes:
    members = dict(seed)
    for mutation in mutations:
        kind = mutation[0]
        if kind == "pickle-bytes":
            name = _pick(members, mutation[1], mutation[2])
            if name is not None:
                members[name] = edit_bytes(members[name], mutation[3])
        elif kind == "debug-field":
            name = _pick(members, ".debug_pkl", mutation[1])
            if name is not None:
                try:
                    info = pickle.loads(members[name])
                except Exception:  # an earlier byte mutation broke it: leave it broken
                    continue
                changed = _replace_debug_field(info, *mutation[2:])
                members[name] = _dumps(changed)
        else:
            name = _pick(members, ".py", mutation[1])
            if name is not None:
                text = members[name].decode("utf-8", "replace")
                members[name] = _mutate_code(text, (kind, *mutation[2:])).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def _dumps(value: Any) -> bytes:
    import sys

    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        return pickle.dumps(value, protocol=2)
    finally:
        sys.set_int_max_str_digits(limit)


def run_case(path: Path, data: bytes, tally: Any, test: str) -> None:
    path.write_bytes(data)
    tally.record(test, outcome(path))


SEED = st.sampled_from(["script", "setstate", "trace"])


@FUZZ
@given(seed=SEED, mutations=st.lists(CODE_MUTATION, min_size=1, max_size=6))
@example(seed="setstate", mutations=[("alias", 0, 18, "f = torch.from_file")])
@example(seed="script", mutations=[("number", 0, 0, "9" * 400)])
def test_code_mutations(scripted_seeds, ts_case_file, fuzz_tally, seed, mutations) -> None:
    """Lines duplicated, swapped, dropped; names, numbers and text replaced; aliases added."""
    run_case(ts_case_file, mutated(scripted_seeds[seed], mutations), fuzz_tally, "ts-code")


@FUZZ
@given(seed=SEED, mutations=st.lists(DEBUG_MUTATION, min_size=1, max_size=4))
@example(seed="script", mutations=[("debug-field", 0, 3, "first-line", 10**5000)])
def test_debug_info_fields(scripted_seeds, ts_case_file, fuzz_tally, seed, mutations) -> None:
    """Offsets, ranges, line numbers and string tables of odd types and sizes."""
    run_case(ts_case_file, mutated(scripted_seeds[seed], mutations), fuzz_tally, "ts-debug")


@FUZZ
@given(seed=SEED, mutations=st.lists(PICKLE_MUTATION, min_size=1, max_size=3))
# A damaged data.pkl raised a ValueError whose message held a newline: a two-line error.
@example(seed="trace", mutations=[("pickle-bytes", "data.pkl", 0, [("delete", 3, 223)])])
# A flipped bit made a LONG_BINPUT with an index near 2^31: the unpickler sized its memo to it
# (13 GB). The test's own archive seeds differ by run; test_torchscript_budgets pins the case.
@example(seed="trace", mutations=[("pickle-bytes", "data.pkl", 8, [("flip", 1072, 5)])])
def test_pickle_bytes(scripted_seeds, ts_case_file, fuzz_tally, seed, mutations) -> None:
    """Damaged data.pkl, constants.pkl and debug pickles."""
    run_case(ts_case_file, mutated(scripted_seeds[seed], mutations), fuzz_tally, "ts-pickle")


@FUZZ
@given(
    seed=SEED,
    mutations=st.lists(st.one_of(CODE_MUTATION, DEBUG_MUTATION, PICKLE_MUTATION), max_size=8),
)
def test_any_mutations(scripted_seeds, ts_case_file, fuzz_tally, seed, mutations) -> None:
    """Every kind, mixed."""
    run_case(ts_case_file, mutated(scripted_seeds[seed], mutations), fuzz_tally, "ts-mixed")

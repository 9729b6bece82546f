"""TorchScript archives built to make the reader work without end: each stops at a budget.

Every case is a real scripted module whose code member is rewritten by hand (the compiler would
not write it). `exportcheck inspect` runs on it in a subprocess: it ends in under 10 s and
500 MB, exits 0, 1 or 2 (never 3) and prints no traceback.
"""

from __future__ import annotations

import io
import pickle
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from tests.hostile.conftest import inspect_in_subprocess
from tests.hostile.test_unsafe_archives import rewrite

SECONDS = 10
PEAK_BYTES = 500 << 20


class Plain(torch.nn.Module):
    """A module whose forward sits in this file: its debug info points here."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.dropout(x, 0.5, self.training)


@pytest.fixture(scope="session")
def plain_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("plain-ts") / "plain.pt"
    torch.jit.script(Plain().train()).save(str(path))
    return path.read_bytes()


def own_code_member(data: bytes, cls: str) -> str:
    """The code member that holds class `cls` (its name follows this test module's path)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            if name.endswith(".py") and f"class {cls}(".encode() in archive.read(name):
                return name
    raise AssertionError(f"no code member declares {cls}")


def with_forward(data: bytes, cls: str, method_text: str, tail: str = "") -> bytes:
    """The archive with `cls.forward` replaced by `method_text` (a method at column 2, more
    methods may follow) and `tail` (module-level code) appended to the file."""
    member = own_code_member(data, cls)

    def change(name: str, old: bytes) -> bytes:
        if name != member:
            return old
        text = old.decode()
        start = text.index("  def forward(")
        end = text.find("\n  def ", start + 1)
        rest = text[end + 1 :] if end != -1 else ""
        return (text[:start] + method_text + rest + tail).encode()

    return rewrite(data, change)


def with_member(data: bytes, suffix: str, content: bytes) -> bytes:
    """The archive with the member whose name ends in `suffix` replaced by `content`."""
    return rewrite(data, lambda name, old: content if name.endswith(suffix) else old)


@dataclass(frozen=True)
class Run:
    code: int
    stderr: str
    seconds: float
    peak_bytes: int


def inspect_cli(path: Path) -> Run:
    """`exportcheck inspect PATH` in a fresh process under a launcher, with its own time and
    peak RSS (a process forked from pytest would report pytest's high-water mark)."""
    measured = inspect_in_subprocess(path)
    return Run(
        measured.exit_code,
        measured.stderr,
        measured.seconds,
        int(measured.peak_rss_mb * (1 << 20)),
    )


def assert_bounded(path: Path, *, expect: str | None = None) -> Run:
    run = inspect_cli(path)
    assert run.code in (0, 1, 2), run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    assert run.seconds < SECONDS, f"{run.seconds:.1f} s"
    assert run.peak_bytes < PEAK_BYTES, f"{run.peak_bytes >> 20} MiB"
    if expect is not None:
        assert run.code == 2, run.stderr
        assert expect in run.stderr and str(path) in run.stderr, run.stderr
        assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    print(f"{path.name}: exit {run.code}, {run.seconds:.2f} s, {run.peak_bytes >> 20} MiB")
    return run


def _body(lines: list[str]) -> str:
    return "  def forward(self, x: Tensor) -> Tensor:\n" + "".join(f"    {s}\n" for s in lines)


# --- constants that grow --------------------------------------------------------------------

GROWING_CONSTANTS = {
    # 3 squared 40 times: 2^40 digits when computed.
    "integer-power": ["n = 3", *["n = torch.mul(n, n)"] * 40, "return torch.dropout(x, 0.5, n)"],
    # A 2-character string repeated 2^30 times: 2 GB.
    "string-repeat": ["s = torch.mul('ab', 1073741824)", "return torch.dropout(x, 0.5, s)"],
    # A list repeated 2^30 times (lists are not folded: it must stay cheap).
    "list-repeat": ["s = torch.mul([1, 2], 1073741824)", "return torch.dropout(x, 0.5, s)"],
    # A string doubled by addition 40 times.
    "string-doubling": ["s = 'ab'", *["s = torch.add(s, s)"] * 40, "return x"],
    # A tuple that holds itself twice, 60 levels deep: small in memory, 2^60 when compared.
    "nested-tuple": ["t = (1,)", *["t = (t, t)"] * 60, "u = torch.eq(t, t)", "return x"],
    # Shifts and powers are left unfolded; they must stay cheap.
    "shift-and-power": [
        "n = ops.aten.__lshift__(1, 1073741824)",
        "m = torch.pow(10, 1073741824)",
        "k = 1 << 1073741824",
        "return torch.dropout(x, 0.5, torch.eq(n, m))",
    ],
}


@pytest.mark.parametrize("case", sorted(GROWING_CONSTANTS))
def test_folded_constants_are_bounded(tmp_path, plain_bytes, case):
    path = tmp_path / f"{case}.pt"
    path.write_bytes(with_forward(plain_bytes, "Plain", _body(GROWING_CONSTANTS[case])))
    run = assert_bounded(path)
    if case not in ("shift-and-power", "list-repeat"):
        assert run.code == 2 and ("bits" in run.stderr or "elements" in run.stderr), run.stderr


# --- inlining that fans out -----------------------------------------------------------------


def _fan_out(levels: int) -> str:
    """forward calls f0; each f_i calls f_(i+1) twice: 2^levels calls when inlined."""
    text = _body(["y = (self).f0(x)", "return y"])
    for level in range(levels):
        text += (
            f"  def f{level}(self, x: Tensor) -> Tensor:\n"
            f"    a = (self).f{level + 1}(x)\n"
            f"    b = (self).f{level + 1}(a)\n"
            "    return torch.add(a, b)\n"
        )
    return text + f"  def f{levels}(self, x: Tensor) -> Tensor:\n    return torch.relu(x)\n"


def _mutual_recursion() -> str:
    """ping calls pong twice and pong calls ping twice, until the call depth limit."""
    return _body(["y = (self).ping(x)", "return y"]) + "".join(
        f"  def {name}(self, x: Tensor) -> Tensor:\n"
        f"    a = (self).{other}(x)\n"
        f"    b = (self).{other}(torch.neg(a))\n"
        "    return torch.dropout(b, 0.5, self.training)\n"
        for name, other in (("ping", "pong"), ("pong", "ping"))
    )


def _function_fan_out(qualifier: str, levels: int) -> tuple[str, str]:
    """The same through module-level functions, each aliased to a local name first."""
    tail = "".join(
        f"def g{level}(x: Tensor) -> Tensor:\n"
        f"  f = {qualifier}.g{level + 1}\n"
        f"  return torch.add(f(x), f(x))\n"
        for level in range(levels)
    )
    last = f"def g{levels}(x: Tensor) -> Tensor:\n  return torch.relu(x)\n"
    return _body([f"y = {qualifier}.g0(x)", "return y"]), tail + last


def qualifier(data: bytes, cls: str) -> str:
    """How code names the module-level functions of the file that holds `cls`."""
    member = own_code_member(data, cls)
    return member.split("/code/", 1)[1][: -len(".py")].replace("/", ".")


def test_exponential_inlining_by_self_fan_out_stops_at_the_work_budget(tmp_path, plain_bytes):
    path = tmp_path / "fan-out.pt"
    path.write_bytes(with_forward(plain_bytes, "Plain", _fan_out(40)))
    assert_bounded(path, expect="steps to read")


def test_exponential_inlining_by_mutual_recursion_stops_at_a_budget(tmp_path, plain_bytes):
    path = tmp_path / "mutual.pt"
    path.write_bytes(with_forward(plain_bytes, "Plain", _mutual_recursion()))
    run = assert_bounded(path)
    assert run.code == 2 and ("steps to read" in run.stderr or "nest more than" in run.stderr)


def test_exponential_inlining_through_function_aliases_stops(tmp_path, plain_bytes):
    method, tail = _function_fan_out(qualifier(plain_bytes, "Plain"), 40)
    path = tmp_path / "functions.pt"
    path.write_bytes(with_forward(plain_bytes, "Plain", method, tail))
    assert_bounded(path, expect="steps to read")


def test_many_names_through_many_branches_stop_at_the_work_budget(tmp_path, plain_bytes):
    # Each branch copies and merges every name: 5000 names times 2000 branches.
    lines = [f"v{i} = x" for i in range(5_000)]
    lines += ["if x:", "  z = 1", "else:", "  z = 2"] * 2000
    path = tmp_path / "branches.pt"
    path.write_bytes(with_forward(plain_bytes, "Plain", _body([*lines, "return x"])))
    assert_bounded(path, expect="steps")


# --- layout checks that could backtrack -----------------------------------------------------


def test_blank_lines_in_a_method_do_not_backtrack(tmp_path, plain_bytes):
    # Lines of spaces fit both "indented line" and "blank line"; a last line out of the
    # method layout made the old pattern try every split of them (2^n).
    method = _body(["y = torch.relu(x)"]) + "      \n" * 60 + "    return y\n  z : int\n"
    path = tmp_path / "blank-method.pt"
    path.write_bytes(with_forward(plain_bytes, "Plain", method))
    assert assert_bounded(path).code in (0, 1)


def test_blank_lines_in_a_function_do_not_backtrack(tmp_path, plain_bytes):
    tail = "def helper(x: Tensor) -> Tensor:\n" + "  \n" * 60 + "  return x\nCONSTANT = 1\n"
    path = tmp_path / "blank-function.pt"
    path.write_bytes(with_forward(plain_bytes, "Plain", _body(["return helper(x)"]), tail))
    assert assert_bounded(path).code in (0, 1)


# --- debug info -----------------------------------------------------------------------------


def _debug_info(data: bytes) -> tuple[str, tuple]:
    member = own_code_member(data, "Plain") + ".debug_pkl"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return member, pickle.loads(archive.read(member))


def _entries_with(info: tuple, change) -> tuple:
    fmt, strings, records = info
    return (fmt, *change(strings, records))


HUGE = 10**5000


def _huge_first_line(strings, records):
    return strings, tuple(
        (r[0], ((r[1][0][0], r[1][0][1], HUGE), *r[1][1:]), r[2]) for r in records
    )


def _huge_trace_line(strings, records):
    # A traced module's source is `file(line): code` lines: a 5000-digit line number.
    frame = f"user.py({'9' * 5000}): y = f(x)\n"
    return (*strings, frame), tuple(
        (r[0], (([len(strings)], r[1][0][1], r[1][0][2]), *r[1][1:]), r[2]) for r in records
    )


def _wrong_types(strings, records):
    return strings, tuple((r[0], (None, "start", [r]), None) for r in records)


def _null_table(strings, records):
    return None, records


def _huge_offsets(strings, records):
    return strings, tuple((HUGE * (i + 1), r[1], r[2]) for i, r in enumerate(records))


def _negative_start(strings, records):
    return strings, tuple((r[0], (r[1][0], -(10**30), r[1][2]), r[2]) for r in records)


DEBUG_INFO = {
    "huge-first-line": _huge_first_line,
    "huge-trace-line": _huge_trace_line,
    "wrong-types": _wrong_types,
    "null-string-table": _null_table,
    "huge-offsets": _huge_offsets,
    "negative-start": _negative_start,
}


@pytest.mark.parametrize("case", sorted(DEBUG_INFO))
def test_malformed_debug_info_drops_the_location(tmp_path, plain_bytes, case):
    member, info = _debug_info(plain_bytes)
    broken = pickle.dumps(_entries_with(info, DEBUG_INFO[case]), protocol=2)
    path = tmp_path / f"{case}.pt"
    path.write_bytes(with_member(plain_bytes, member, broken))
    run = assert_bounded(path)
    assert run.code == 1  # the train-mode dropout is still reported


def test_debug_info_as_text_pickle_with_a_5000_digit_int(tmp_path, plain_bytes):
    # Protocol 0 writes ints as decimal text: reading one of 5000 digits hits Python's limit.
    member, info = _debug_info(plain_bytes)
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        broken = pickle.dumps(_entries_with(info, _huge_first_line), protocol=0)
    finally:
        sys.set_int_max_str_digits(limit)
    path = tmp_path / "text-pickle.pt"
    path.write_bytes(with_member(plain_bytes, member, broken))
    assert assert_bounded(path).code == 1


# --- pickles that make the unpickler allocate -----------------------------------------------


def _with_memo_index(pickled: bytes, put: bytes) -> bytes:
    """The pickle with `None`, stored at a memo index by `put` and popped, before its body."""
    assert pickled[:1] == b"\x80"  # PROTO n: keep it first
    return pickled[:2] + b"N" + put + b"0" + pickled[2:]


def _member_named(data: bytes, suffix: str) -> str:
    if suffix == ".debug_pkl":
        return own_code_member(data, "Plain") + suffix
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return next(name for name in archive.namelist() if name.endswith(suffix))


@pytest.mark.parametrize(
    ("suffix", "put"),
    [
        ("data.pkl", b"r" + (2**31 - 1).to_bytes(4, "little")),  # LONG_BINPUT
        (".debug_pkl", b"p99999999999\n"),  # PUT, as text
    ],
)
def test_a_huge_memo_index_is_refused_before_it_is_allocated(tmp_path, plain_bytes, suffix, put):
    member = _member_named(plain_bytes, suffix)
    with zipfile.ZipFile(io.BytesIO(plain_bytes)) as archive:
        pickled = archive.read(member)
    path = tmp_path / "memo.pt"
    path.write_bytes(with_member(plain_bytes, member, _with_memo_index(pickled, put)))
    run = assert_bounded(path)
    # data.pkl is needed: a one-line error; debug info only serves locations: dropped.
    assert run.code == (2 if suffix == "data.pkl" else 1), run.stderr


# --- code to parse --------------------------------------------------------------------------


def _methods(count: int, lines: list[str]) -> str:
    """`count` methods with the same statements (distinct texts: the names differ)."""
    return "".join(
        f"  def m{n}(self, x: Tensor) -> Tensor:\n" + "".join(f"    {s}\n" for s in lines)
        for n in range(count)
    )


DENSE = {
    # About 32 bytes a statement: 3 x 240 kB, under the budgets; then 6 MB in one method.
    "calls": (3, [f"_{i} = torch.add(x, {i})" for i in range(7_500)], 1),
    "calls-past-the-budget": (1, [f"_{i} = torch.add(x, {i})" for i in range(200_000)], 2),
    # A name every two bytes (the most syntax nodes a byte can hold): 3 x 240 kB.
    "names": (3, ["_0 = [" + "x," * 120_000 + "]", "return x"], 1),
    # Many small distinct methods, 1 MB in all.
    "many-methods": (4_000, [f"_{i} = torch.add(x, {i})" for i in range(8)], 2),
}


@pytest.mark.parametrize("case", sorted(DENSE))
def test_dense_code_is_parsed_within_a_budget(tmp_path, plain_bytes, case):
    count, lines, code = DENSE[case]
    path = tmp_path / "dense.pt"
    method = _body(["y = (self).m0(x)", "return y"]) + _methods(count, lines)
    path.write_bytes(with_forward(plain_bytes, "Plain", method))
    run = assert_bounded(path)
    assert run.code == code, run.stderr


@pytest.mark.parametrize(
    "line", ["y = 1if True else 2", "s = '\\d'"], ids=["decimal-literal", "invalid-escape"]
)
def test_code_that_provokes_python_warnings_prints_none(tmp_path, plain_bytes, line):
    """Python warns about some code it still parses; archive code is parsed, never shown."""
    path = tmp_path / "warns.pt"
    path.write_bytes(with_forward(plain_bytes, "Plain", _body([line, "return x"])))
    run = assert_bounded(path)
    assert "Warning" not in run.stderr, run.stderr

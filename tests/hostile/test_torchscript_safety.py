"""TorchScript code a load would run is judged by the operators it reaches, however spelled.

`torch.jit.load` runs `__setstate__` of every scripted object it unpickles. Each case rewrites
the `__setstate__` of a real scripted module by hand, in a spelling the compiler accepts but a
list of spellings would miss, and checks that `inspect` reports it (so `compare` and
`validate` never load the file). A few cases are first proven real: torch itself, loading the
file, creates the planted file.
"""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch

from exportcheck.graph_checks import inspect_artifact
from tests.hostile.test_unsafe_archives import _inspect_proving_nothing_ran, rewrite


class Stateful(torch.nn.Module):
    """A module with its own (harmless) `__getstate__`/`__setstate__`, as a scripted module
    that holds a file name would have."""

    def __init__(self, name: str = "") -> None:
        super().__init__()
        self.name = name
        self.buffer = torch.zeros(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    @torch.jit.export
    def __getstate__(self) -> tuple[str, bool]:
        return (self.name, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[str, bool]) -> None:
        self.name = state[0]
        self.training = state[1]

    @torch.jit.export
    def helper(self, name: str) -> None:
        self.name = name


_AFTER = "    self.training = (state)[1]\n"


def _code_member(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            if name.endswith(".py") and b"class Stateful(" in archive.read(name):
                return name
    raise AssertionError("no code member declares Stateful")


def hostile(folder: Path, planted: Path, setstate: str, extra: str = "", tail: str = "") -> Path:
    """A scripted Stateful saved with `planted` as its name, `setstate` (lines at method-body
    indentation) added to its `__setstate__`, `extra` methods and `tail` functions added;
    QUALIFIER in them becomes how code names the file's functions."""
    saved = folder / "saved.pt"
    torch.jit.script(Stateful(str(planted)).eval()).save(str(saved))
    data = saved.read_bytes()
    member = _code_member(data)
    body = textwrap.indent(textwrap.dedent(setstate).strip() + "\n", "    ")

    def change(name: str, old: bytes) -> bytes:
        if name != member:
            return old
        text = old.decode().replace(_AFTER, _AFTER + body) + extra + tail
        qualifier = member.split("/code/", 1)[1][: -len(".py")].replace("/", ".")
        return text.replace("QUALIFIER", qualifier).encode()

    path = folder / "hostile.pt"
    path.write_bytes(rewrite(data, change))
    return path


def unsafe_messages(path: Path) -> list[str]:
    return [f.message for f in inspect_artifact(path) if f.rule == "unsafe-archive-content"]


P = "(state)[0]"
# Spellings of one file-creating call that the compiler accepts in a code file.
SPELLINGS = {
    "alias-by-assignment": f"f = torch.from_file\nself.buffer = f({P}, True, 4)",
    "alias-by-tuple-unpacking": f"g, f = torch.zeros, torch.from_file\nself.buffer = f({P}, True, 4)",
    "ops-aten": f"self.buffer = ops.aten.from_file({P}, True, 4)",
    "torch-ops-aten": f"self.buffer = torch.ops.aten.from_file({P}, True, 4)",
    "overload-packet": f"self.buffer = ops.aten.from_file.default({P}, True, 4)",
    "namespace-chain": f"o = ops\na = o.aten\nself.buffer = a.from_file({P}, True, 4)",
    "namespace-chain-reversed": f"self.buffer = c.from_file({P}, True, 4)\nc = b\nb = a\na = ops.aten",
    "module-alias": f"t = torch\nself.buffer = t.from_file({P}, True, 4)",
    "getattr": f"f = getattr(ops.aten, 'from_file')\nself.buffer = f({P}, True, 4)",
    "conditional-alias": f"f = torch.zeros if self.training else torch.from_file\n_0 = f({P})",
    "tensor-method": f"_0 = torch.zeros([1])\n_1 = _0.save({P})",
    "saved-in-a-list": f"fs = [torch.zeros, torch.save]\n_0 = fs[1](self.buffer, {P})",
}
# The spellings torch.jit.load compiles and runs as written (proven in a subprocess below).
LOADER_RUNS = ("alias-by-assignment", "ops-aten", "namespace-chain", "module-alias", "getattr")


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_file_op_in_setstate_is_unsafe_however_spelled(tmp_path, spelling):
    planted = tmp_path / "planted.bin"
    path = hostile(tmp_path, planted, SPELLINGS[spelling])
    messages = [m for m in _inspect_messages(path, planted) if "at load time" in m]
    assert messages, spelling
    assert any("aten::from_file" in m or "aten::save" in m for m in messages), messages


def _inspect_messages(path: Path, planted: Path) -> list[str]:
    findings = _inspect_proving_nothing_ran(path, planted)
    return [f.message for f in findings if f.rule == "unsafe-archive-content"]


_LOAD = """
import sys, torch
for path in sys.argv[1:]:
    torch.jit.load(path)
"""


def test_the_loader_really_runs_those_spellings(tmp_path):
    """Ground truth: loading each file with torch creates its planted file."""
    paths, planted = [], []
    for spelling in LOADER_RUNS:
        folder = tmp_path / spelling
        folder.mkdir()
        planted.append(folder / "planted.bin")
        paths.append(str(hostile(folder, planted[-1], SPELLINGS[spelling])))
    subprocess.run([sys.executable, "-c", _LOAD, *paths], check=True, timeout=120)
    assert all(p.exists() for p in planted)


def test_a_file_op_reached_through_a_method_and_a_function_alias(tmp_path):
    planted = tmp_path / "planted.bin"
    extra = (
        "  def stash(self, name: str) -> NoneType:\n"
        "    _0 = (self).stash2(name)\n"
        "    return None\n"
        "  def stash2(self, name: str) -> NoneType:\n"
        "    buffer = self.buffer\n"
        "    keep = QUALIFIER.keep\n"
        "    _0 = keep(buffer, name)\n"
        "    return None\n"
    )
    tail = "def keep(t: Tensor, name: str) -> NoneType:\n  torch.save(t, name)\n  return None\n"
    path = hostile(tmp_path, planted, f"_0 = (self).stash({P})", extra, tail)
    messages = _inspect_messages(path, planted)
    assert any(
        "__setstate__ calls torch.save at load time, through keep" in m and "aten::save" in m
        for m in messages
    ), messages


def test_a_method_of_an_unknown_receiver_is_every_method_of_that_name(tmp_path):
    planted = tmp_path / "planted.bin"
    extra = "  def sneaky(self, name: str) -> NoneType:\n    torch.save(self.buffer, name)\n"
    path = hostile(tmp_path, planted, f"o = unknown_global\n_0 = o.sneaky({P})", extra)
    messages = _inspect_messages(path, planted)
    assert any("through Stateful.sneaky" in m and "aten::save" in m for m in messages), messages


@pytest.mark.parametrize(
    ("setstate", "expected"),
    [
        (f"_0 = ops.evil.run({P})", "evil::run"),
        ("print(self.name)", "prim::Print"),
        (f"_0 = ({P})(1)", "cannot resolve"),
        (f"_0 = torch.classes.evil.Runner({P})", "classes::evil.Runner"),
    ],
)
def test_anything_off_the_allow_list_is_unsafe_at_load_time(tmp_path, setstate, expected):
    planted = tmp_path / "planted.bin"
    messages = _inspect_messages(hostile(tmp_path, planted, setstate), planted)
    assert any(expected in m and "at load time" in m for m in messages), messages


def test_forward_code_is_judged_only_for_file_operations(tmp_path):
    planted = tmp_path / "planted.bin"
    extra = (
        "  def other(self, x: Tensor) -> Tensor:\n"
        "    y = ops.custom.fancy(x)\n"
        "    return torch.conv2d(y, y)\n"
        "  def dump(self, x: Tensor) -> NoneType:\n"
        "    o = ops.aten\n"
        "    _0 = o.save(x, self.name)\n"
        "    return None\n"
    )
    messages = _inspect_messages(hostile(tmp_path, planted, "pass", extra), planted)
    assert messages == [f"{_code_member_of(tmp_path)}: Stateful.dump calls o.save when called"]


def _code_member_of(folder: Path) -> str:
    return _code_member((folder / "hostile.pt").read_bytes())


def test_harmless_setstate_is_clean(tmp_path):
    path = tmp_path / "clean.pt"
    torch.jit.script(Stateful("x").eval()).save(str(path))
    assert unsafe_messages(path) == []


def _real_models():
    import torch.ao.nn.quantized as nnq
    import torch.ao.nn.quantized.dynamic as nnqd
    from torch import nn

    return {
        "transformer": nn.Transformer(16, 2, 1, 1, 16),
        "lstm": nn.LSTM(4, 4, 2),
        "multihead": nn.MultiheadAttention(8, 2),
        # Quantized modules rebuild packed weights in `__setstate__`.
        "quantized-conv": nnq.Conv2d(3, 3, 3),
        "quantized-conv-transpose": nnq.ConvTranspose2d(3, 3, 3),
        "quantized-embedding": nnq.Embedding(10, 4),
        "dynamic-linear": nn.Sequential(nnqd.Linear(4, 4)),
        "dynamic-lstm": nnqd.LSTM(4, 4),
    }


@pytest.mark.parametrize("name", sorted(_real_models()))
def test_real_scripted_models_have_no_unsafe_code(tmp_path, name):
    path = tmp_path / f"{name}.pt"
    torch.jit.script(_real_models()[name].eval()).save(str(path))
    # Quantized archives pickle torch.per_channel_affine and the like: another finding.
    assert [m for m in unsafe_messages(path) if "/code/" in m.split(":", 1)[0]] == []


def test_compare_never_loads_a_hostile_archive(tmp_path):
    planted = tmp_path / "planted.bin"
    path = hostile(tmp_path, planted, SPELLINGS["alias-by-assignment"])
    target = tmp_path / "target.py"
    target.write_text(
        "import torch\n"
        f"from {Stateful.__module__} import Stateful\n"
        "def build():\n"
        "    return Stateful('unused').eval(), (torch.randn(2, 3),)\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "exportcheck", "compare", str(path), "--against", f"{target}:build"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert not planted.exists()
    assert result.returncode != 0
    assert "unsafe-archive-content" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr

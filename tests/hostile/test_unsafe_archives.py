"""Booby-trapped and oversized torch archives: nothing in them runs, every bound is one line.

Each case carries its proof: a planted file that a loader's payload would create is not
created, the input's sha256 is unchanged, and memory stays bounded.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from exportcheck.errors import UnreadableArtifactError
from exportcheck.graph_checks import inspect_artifact


@pytest.fixture(scope="session")
def scripted_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    import torch

    path = tmp_path_factory.mktemp("trap-ts") / "m.pt"
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.1)).train()
    torch.jit.script(model).save(str(path))
    return path.read_bytes()


@pytest.fixture(scope="session")
def program_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    import torch

    path = tmp_path_factory.mktemp("trap-pt2") / "m.pt2"
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.1)).train()
    torch.export.save(torch.export.export(model, (torch.randn(1, 2),)), str(path))
    return path.read_bytes()


def rewrite(source: bytes, change, extra: dict[str, bytes] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(source)) as old, zipfile.ZipFile(out, "w") as new:
        for name in old.namelist():
            data = change(name, old.read(name))
            if data is not None:
                new.writestr(name, data)
        for name, data in (extra or {}).items():
            new.writestr(name, data)
    return out.getvalue()


class _Payload:
    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.write_text, (Path(self.target), "pwned"))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _inspect_proving_nothing_ran(path: Path, planted: Path) -> list:
    before = sha(path)
    findings = inspect_artifact(path)
    assert not planted.exists()
    assert sha(path) == before
    return findings


def test_foreign_global_in_data_pkl_is_reported_never_run(tmp_path, scripted_bytes):
    planted = tmp_path / "planted.txt"
    payload = pickle.dumps(_Payload(str(planted)), protocol=2)
    path = tmp_path / "trap.pt"
    path.write_bytes(rewrite(scripted_bytes, lambda n, d: d, {"m/extra.pkl": payload}))
    findings = _inspect_proving_nothing_ran(path, planted)
    unsafe = [f for f in findings if f.rule == "unsafe-archive-content"]
    assert unsafe and "pathlib" in unsafe[0].message
    # The mode findings of the rest of the file are still reported.
    assert {"training-dropout", "training-module"} <= {f.rule for f in findings}


def test_pickled_sample_inputs_and_native_library_in_pt2(tmp_path, program_bytes):
    planted = tmp_path / "planted.txt"
    payload = pickle.dumps(_Payload(str(planted)), protocol=2)

    def change(name: str, data: bytes) -> bytes:
        return payload if name.endswith("sample_inputs/model.pt") else data

    path = tmp_path / "trap.pt2"
    path.write_bytes(
        rewrite(program_bytes, change, {"m/data/aotinductor/model/model.so": b"\x7fELF"})
    )
    findings = _inspect_proving_nothing_ran(path, planted)
    messages = [f.message for f in findings if f.rule == "unsafe-archive-content"]
    assert any("sample_inputs" in m and "pathlib" in m for m in messages)
    assert any("native library" in m for m in messages)
    assert "training-dropout" in {f.rule for f in findings}


def setstate_trap(planted: Path):
    """A scripted module whose `__setstate__` maps `planted` into a tensor at load time."""
    import torch

    class Trap(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.name = str(planted)
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
            self.buffer = torch.from_file(state[0], shared=True, size=4)

    return Trap()


def test_setstate_reaching_the_file_system_is_reported(tmp_path, scripted_bytes):
    import torch

    planted = tmp_path / "planted.bin"
    path = tmp_path / "setstate.pt"
    torch.jit.script(setstate_trap(planted).eval()).save(str(path))
    findings = _inspect_proving_nothing_ran(path, planted)
    messages = [f.message for f in findings if f.rule == "unsafe-archive-content"]
    assert any("__setstate__ calls torch.from_file at load time" in m for m in messages)


@pytest.mark.parametrize(
    ("member", "cause"),
    [
        ("m/../../escape.py", "climbs out of the archive folder"),
        ("/abs/path.py", "absolute path"),
        ("m/nul\x01name.py", "contains NUL"),
    ],
)
def test_member_names_a_loader_would_misplace_are_refused(tmp_path, scripted_bytes, member, cause):
    path = tmp_path / "names.pt"
    data = rewrite(scripted_bytes, lambda n, d: d, {member: b"x"})
    # zipfile cuts names at NUL when writing: plant it in the stored bytes afterwards.
    path.write_bytes(data.replace(b"nul\x01name", b"nul\x00name"))
    before = sha(path)
    with pytest.raises(UnreadableArtifactError, match=cause):
        inspect_artifact(path)
    assert sha(path) == before
    assert not (tmp_path.parent / "escape.py").exists()


def test_zip_bomb_is_one_line_with_bounded_memory(tmp_path, scripted_bytes):
    chunk = b"#" * (1 << 20)
    path = tmp_path / "bomb.pt"
    with (
        zipfile.ZipFile(io.BytesIO(scripted_bytes)) as old,
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as new,
    ):
        for name in old.namelist():
            new.writestr(name, old.read(name))
        with new.open("m/code/__torch__/bomb.py", "w", force_zip64=True) as stream:
            for _ in range(2048):  # 2 GiB of comment, ~2 MB compressed
                stream.write(chunk)
    probe = (
        "import resource, sys\n"
        "from exportcheck.errors import InputError\n"
        "from exportcheck.graph_checks import inspect_artifact\n"
        "try:\n"
        "    inspect_artifact(sys.argv[1])\n"
        "except InputError as error:\n"
        "    print(error)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )

    def run(target: Path) -> list[str]:
        result = subprocess.run(
            [sys.executable, "-c", probe, str(target)], capture_output=True, text=True, timeout=120
        )
        return result.stdout.strip().splitlines()

    message, peak_kib = run(path)
    clean = tmp_path / "clean.pt"
    clean.write_bytes(scripted_bytes)
    *_, baseline_kib = run(clean)
    assert "zip bomb" in message
    # The 2 GiB member is never inflated: the peak is that of reading a clean archive.
    assert int(peak_kib) - int(baseline_kib) < 64 * 1024


def _is_container_code(name: str) -> bool:
    return "/nn/modules/container" in name and name.endswith(".py")


def test_ten_thousand_nested_parentheses_are_one_line(tmp_path, scripted_bytes):
    code = b"def forward(self, x):\n  return " + b"(" * 10_000 + b"x" + b")" * 10_000 + b"\n"
    path = tmp_path / "deep.pt"
    path.write_bytes(
        # The Sequential's code is container.py, or container/___torch_mangle_N.py once
        # this process has scripted another Sequential.
        rewrite(scripted_bytes, lambda n, d: code if _is_container_code(n) else d)
    )
    with pytest.raises(UnreadableArtifactError, match="container"):
        inspect_artifact(path)


def test_huge_declared_weight_is_refused_without_allocating(tmp_path, program_bytes):
    import json

    def change(name: str, data: bytes) -> bytes:
        if not name.endswith("model_weights_config.json"):
            return data
        config = json.loads(data)
        for entry in config["config"].values():
            entry["tensor_meta"]["sizes"] = [{"as_int": 32768}, {"as_int": 32768}]
        return json.dumps(config).encode()

    path = tmp_path / "huge.pt2"
    path.write_bytes(rewrite(program_bytes, change))
    with pytest.raises(UnreadableArtifactError, match="declares 1073741824 elements"):
        inspect_artifact(path)


def test_compare_never_loads_an_archive_with_unsafe_content(tmp_path):
    import torch

    import exportcheck

    planted = tmp_path / "planted.bin"
    path = tmp_path / "setstate.pt"
    model = setstate_trap(planted).eval()
    torch.jit.script(model).save(str(path))
    report = exportcheck.compare(str(path), model, (torch.randn(2, 3),), devices="cpu")
    assert not planted.exists()
    assert not report.comparisons
    compare_skips = [s.reason for s in report.skipped if s.step.startswith("compare")]
    assert compare_skips and all(
        r.startswith("not loaded: the archive holds unsafe content") for r in compare_skips
    )
    assert "unsafe-archive-content" in {f.rule for f in report.findings}
    assert report.exit_code() == 1

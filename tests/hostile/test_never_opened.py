"""Proof that refused external-data locations are never opened, using a planted FIFO.

Opening a FIFO for reading blocks until a writer comes, so an exportcheck that opened the
planted file would hang: the CLI runs in a subprocess with a timeout. Where strace works, a
second test reads the system calls and checks the planted path was never passed to open.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile.test_corpus import PREFIX, tiny_model, with_external

TIMEOUT = 60


def exportcheck(*args: str, timeout: float = TIMEOUT, wrapper: tuple[str, ...] = ()):
    return subprocess.run(
        [*wrapper, sys.executable, "-m", "exportcheck", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUTF8": "1"},
    )


def layout(tmp_path: Path, how: str) -> tuple[Path, Path]:
    """(model, planted FIFO): the model's external data points at the FIFO outside its folder."""
    outside = tmp_path / "outside"
    outside.mkdir()
    fifo = outside / "weights.bin"
    os.mkfifo(fifo)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    location = {
        "absolute": str(fifo),
        "climbs-out": "../outside/weights.bin",
        "symlink-out": "weights.bin",
    }[how]
    if how == "symlink-out":
        os.symlink(fifo, model_dir / "weights.bin")
    model = model_dir / "m.onnx"
    model.write_bytes(with_external(location))
    return model, fifo


def test_the_planted_fifo_would_hang_whoever_opens_it(tmp_path: Path) -> None:
    """The method works: a process that opens the FIFO does not finish."""
    _, fifo = layout(tmp_path, "absolute")
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run([sys.executable, "-c", f"open({str(fifo)!r}, 'rb').read()"], timeout=2)


@pytest.mark.parametrize("how", ["absolute", "climbs-out", "symlink-out"])
def test_refused_location_is_never_opened(how: str, tmp_path: Path) -> None:
    model, _ = layout(tmp_path, how)
    result = exportcheck("inspect", str(model))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{PREFIX}{model}: external data of tensor 'w' ")
    assert "refused" in lines[0]


def test_weights_inside_the_folder_are_not_read_either(tmp_path: Path) -> None:
    """Static inspection never loads weights: a FIFO as the model's own side file is fine."""
    model = tmp_path / "m.onnx"
    model.write_bytes(with_external("weights.bin"))
    os.mkfifo(tmp_path / "weights.bin")
    result = exportcheck("inspect", str(model))
    assert result.returncode == 0, result.stderr
    assert "missing-external-data" not in result.stdout


def test_fifo_named_like_a_model_is_not_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "model.onnx"
    os.mkfifo(fifo)
    result = exportcheck("inspect", str(fifo))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"{PREFIX}{fifo}: not a regular file"]


def _strace_works() -> bool:
    if shutil.which("strace") is None:
        return False
    probe = subprocess.run(["strace", "-f", "-o", os.devnull, "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _strace_works(), reason="strace is missing or may not trace here")
def test_strace_shows_no_open_of_planted_or_input_for_writing(tmp_path: Path) -> None:
    model, fifo = layout(tmp_path, "climbs-out")
    clean = tmp_path / "model" / "clean.onnx"
    clean.write_bytes(tiny_model().SerializeToString())
    log = tmp_path / "strace.log"
    wrapper = ("strace", "-f", "-qq", "-e", "trace=open,openat,openat2,creat", "-o", str(log))
    result = exportcheck("inspect", str(model), str(clean), wrapper=wrapper)
    assert result.returncode == 2, result.stderr
    opens = log.read_text(errors="replace").splitlines()
    assert not [line for line in opens if str(fifo.parent) in line], "the planted file was opened"
    inputs = [line for line in opens if str(model) in line or str(clean) in line]
    assert inputs, "strace saw no open of the inputs at all"
    for line in inputs:
        assert "O_RDONLY" in line and "O_CREAT" not in line, line

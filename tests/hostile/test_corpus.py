"""Bad inputs as data: each names the error inspect_artifact raises and the CLI's one-line message.

Every case also checks that the user's files were opened read-only: their mtime and sha256 (and
the folder's listing) are the same before and after the library and the CLI ran.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import stat
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper
from typer.testing import CliRunner

from exportcheck.cli.main import app
from exportcheck.errors import (
    EXIT_INPUT,
    InputError,
    NotAnArtifactError,
    UnreadableArtifactError,
    UnsafeExternalDataError,
    UnsupportedArtifactError,
)
from exportcheck.graph_checks import inspect_artifact

PREFIX = "exportcheck: error: "


@dataclass(frozen=True)
class Inputs:
    """What a case builder may use: a folder of its own and the session's real exports."""

    folder: Path
    onnx_legacy: bytes
    pt2: bytes
    torchscript: bytes


@dataclass(frozen=True)
class Case:
    """One bad input: how to build it, what the library raises, what the CLI says."""

    name: str
    build: Callable[[Inputs], Path]
    error: type[InputError]
    cause: str
    cli_cause: str | None = None  # when the CLI reports it before reading (paths, folders)


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def tiny_model(initializers: list[TensorProto] = ()) -> onnx.ModelProto:
    """A valid one-node model; `initializers` are added to its graph (for external data)."""
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        list(initializers),
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def external_tensor(location: str) -> TensorProto:
    tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2])
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "8")):
        tensor.external_data.add(key=key, value=value)
    return tensor


def with_external(location: str) -> bytes:
    return tiny_model([external_tensor(location)]).SerializeToString()


def planted(inputs: Inputs) -> Path:
    """A real file outside the model's folder; tests below prove it is never opened."""
    target = (inputs.folder / "outside" / "weights.bin").absolute()
    return _write(target, b"\0" * 8)


def _state_dict_bytes(legacy: bool = False) -> bytes:
    import torch

    buffer = io.BytesIO()
    state = torch.nn.Linear(2, 2).state_dict()
    torch.save(state, buffer, _use_new_zipfile_serialization=not legacy)
    return buffer.getvalue()


def _rewrite_zip(source: bytes, change: Callable[[str, bytes], bytes | None]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(source)) as old, zipfile.ZipFile(out, "w") as new:
        for name in old.namelist():
            data = change(name, old.read(name))
            if data is not None:
                new.writestr(name, data)
    return out.getvalue()


def _patch_central_directory(source: bytes, suffix: str, offset: int, value: int) -> bytes:
    """Sets a 2-byte field of the central-directory record of the entry named `*suffix`."""
    data = bytearray(source)
    position = data.find(b"PK\x01\x02")
    while position >= 0:
        length = int.from_bytes(data[position + 28 : position + 30], "little")
        name = bytes(data[position + 46 : position + 46 + length]).decode()
        if name.endswith(suffix):
            data[position + offset : position + offset + 2] = value.to_bytes(2, "little")
            return bytes(data)
        position = data.find(b"PK\x01\x02", position + 46)
    raise AssertionError(f"no entry ending in {suffix}")


def _ir_too_new(inputs: Inputs) -> Path:
    model = tiny_model()
    model.ir_version = onnx.IR_VERSION + 5
    return _write(inputs.folder / "ir.onnx", model.SerializeToString())


def _opset_too_new(inputs: Inputs) -> Path:
    model = tiny_model()
    model.opset_import[0].version = 999
    return _write(inputs.folder / "opset.onnx", model.SerializeToString())


def _symlink_out(inputs: Inputs) -> Path:
    target = planted(inputs)
    model = _write(inputs.folder / "model" / "m.onnx", with_external("weights.bin"))
    os.symlink(target, model.parent / "weights.bin")
    return model


CASES = [
    Case(
        "empty-onnx",
        lambda i: _write(i.folder / "empty.onnx", b""),
        UnreadableArtifactError,
        "empty file, not an ONNX model",
    ),
    Case(
        "empty-pt",
        lambda i: _write(i.folder / "empty.pt", b""),
        NotAnArtifactError,
        "empty file, not a model",
    ),
    Case(
        "empty-pt2",
        lambda i: _write(i.folder / "empty.pt2", b""),
        NotAnArtifactError,
        "empty file, not a model",
    ),
    Case(
        "random-bytes-onnx",
        lambda i: _write(i.folder / "random.onnx", random.Random(0).randbytes(4096)),
        UnreadableArtifactError,
        "not a valid ONNX protobuf",
    ),
    Case(
        "truncated-onnx",
        lambda i: _write(i.folder / "half.onnx", i.onnx_legacy[: len(i.onnx_legacy) // 2]),
        UnreadableArtifactError,
        "not a valid ONNX protobuf",
    ),
    Case(
        "tensorproto-as-onnx",
        lambda i: _write(
            i.folder / "tensor.onnx",
            helper.make_tensor("t", TensorProto.FLOAT, [2, 3], range(6)).SerializeToString(),
        ),
        UnreadableArtifactError,
        "not a valid ONNX protobuf",
    ),
    Case(
        "graphproto-as-onnx",
        lambda i: _write(i.folder / "graph.onnx", tiny_model().graph.SerializeToString()),
        UnreadableArtifactError,
        "parses as protobuf but is not an ONNX model",
    ),
    Case(
        "ir-version-too-new",
        _ir_too_new,
        UnreadableArtifactError,
        f"IR version {onnx.IR_VERSION + 5} is newer than the installed onnx",
    ),
    Case(
        "opset-too-new",
        _opset_too_new,
        UnreadableArtifactError,
        "opset 999 is newer than the installed onnx",
    ),
    Case(
        "external-absolute",
        lambda i: _write(i.folder / "model" / "m.onnx", with_external(str(planted(i)))),
        UnsafeExternalDataError,
        "has absolute location",
    ),
    Case(
        "external-climbs-out",
        lambda i: _write(
            (planted(i), i.folder / "model" / "m.onnx")[1],
            with_external("../outside/weights.bin"),
        ),
        UnsafeExternalDataError,
        "points outside the model's folder",
    ),
    Case(
        "external-climbs-out-midway",
        lambda i: _write(i.folder / "model" / "m.onnx", with_external("sub/../../x.bin")),
        UnsafeExternalDataError,
        "points outside the model's folder",
    ),
    Case(
        "external-symlink-out",
        _symlink_out,
        UnsafeExternalDataError,
        "points outside the model's folder",
    ),
    Case(
        "external-nul-byte",
        lambda i: _write(i.folder / "m.onnx", with_external("w.bin\0/../../etc/passwd")),
        UnsafeExternalDataError,
        "has no usable location",
    ),
    Case(
        "external-empty-location",
        lambda i: _write(i.folder / "m.onnx", with_external("")),
        UnsafeExternalDataError,
        "has no usable location",
    ),
    Case(
        "state-dict-as-pt",
        lambda i: _write(i.folder / "weights.pt", _state_dict_bytes()),
        NotAnArtifactError,
        "a torch.save checkpoint (state dict or pickled object)",
    ),
    Case(
        "state-dict-as-pt2",
        lambda i: _write(i.folder / "weights.pt2", _state_dict_bytes()),
        NotAnArtifactError,
        "a torch.save checkpoint (state dict or pickled object)",
    ),
    Case(
        "legacy-pickle-pt",
        lambda i: _write(i.folder / "legacy.pth", _state_dict_bytes(legacy=True)),
        NotAnArtifactError,
        "not a TorchScript or torch.export archive (not a zip file",
    ),
    Case(
        "pt2-garbage-model-json",
        lambda i: _write(
            i.folder / "bad.pt2",
            _rewrite_zip(
                i.pt2, lambda n, d: b"{not json" if n.endswith("models/model.json") else d
            ),
        ),
        UnreadableArtifactError,
        "cannot load as a torch.export program",
    ),
    Case(
        "pt2-newer-archive-version",
        lambda i: _write(
            i.folder / "version.pt2",
            _rewrite_zip(i.pt2, lambda n, d: b"999" if n.endswith("/archive_version") else d),
        ),
        UnreadableArtifactError,
        "cannot load as a torch.export program",
    ),
    Case(
        "pt2-without-model",
        lambda i: _write(
            i.folder / "nomodel.pt2",
            _rewrite_zip(i.pt2, lambda n, d: None if n.endswith("models/model.json") else d),
        ),
        UnreadableArtifactError,
        "cannot load as a torch.export program",
    ),
    Case(
        "pt2-unknown-compression",
        lambda i: _write(
            i.folder / "method.pt2", _patch_central_directory(i.pt2, "/.data/version", 10, 99)
        ),
        UnreadableArtifactError,
        "cannot load as a torch.export program: member 'linear/.data/version' uses compression method 99",
    ),
    Case(
        # zipfile raises NotImplementedError for a zip needing a newer unzip (was exit 3).
        "zip-needs-newer-unzip",
        lambda i: _write(
            i.folder / "future.pt2", _patch_central_directory(i.pt2, "/archive_format", 6, 78)
        ),
        UnreadableArtifactError,
        "not a TorchScript or torch.export archive",
    ),
    Case(
        "torchscript-garbage-code",
        lambda i: _write(
            i.folder / "code.pt",
            _rewrite_zip(
                i.torchscript,
                lambda n, d: b"def forward(self, x):\n  ((((" if n.endswith(".py") else d,
            ),
        ),
        UnreadableArtifactError,
        "cannot load as TorchScript",
    ),
    Case(
        "torchscript-without-data-pkl",
        lambda i: _write(
            i.folder / "nodata.torchscript",
            _rewrite_zip(i.torchscript, lambda n, d: None if n.endswith("/data.pkl") else d),
        ),
        UnreadableArtifactError,
        "cannot load as TorchScript",
    ),
    Case(
        "unsupported-suffix",
        lambda i: _write(i.folder / "notes.txt", b"not a model"),
        UnsupportedArtifactError,
        "unsupported file type '.txt'",
    ),
    Case(
        "does-not-exist",
        lambda i: i.folder / "nope.onnx",
        UnreadableArtifactError,
        "no such file",
        cli_cause="no such file or directory",
    ),
    Case(
        "folder-without-models",
        lambda i: _write(i.folder / "no models" / "README.txt", b"hi").parent,
        UnsupportedArtifactError,
        "unsupported file type '(no suffix)'",
        cli_cause="no model files",
    ),
    Case(
        "fifo-named-onnx",
        lambda i: _fifo(i.folder / "pipe.onnx"),
        UnreadableArtifactError,
        "not a regular file",
    ),
]


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under `folder`: type, mtime and, for regular files, sha256 (FIFOs not read)."""
    entries: dict[str, tuple] = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root, name)
            info = path.lstat()
            digest = None
            if stat.S_ISREG(info.st_mode):
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            entries[str(path.relative_to(folder))] = (
                stat.S_IFMT(info.st_mode),
                info.st_mtime_ns,
                digest,
            )
    return entries


@pytest.fixture(scope="session")
def pt2_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real torch.export archive of a tiny eval-mode model, saved once per session."""
    import torch

    path = tmp_path_factory.mktemp("pt2") / "linear.pt2"
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.1)).eval()
    torch.export.save(torch.export.export(model, (torch.randn(1, 2),)), str(path))
    return path.read_bytes()


@pytest.fixture(scope="session")
def torchscript_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real scripted TorchScript archive, saved once per session."""
    import torch

    path = tmp_path_factory.mktemp("ts") / "linear.pt"
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.1)).eval()
    torch.jit.script(model).save(str(path))
    return path.read_bytes()


@pytest.fixture
def inputs(tmp_path: Path, exported_onnx, pt2_bytes, torchscript_bytes, monkeypatch) -> Inputs:
    # The CLI reads [tool.exportcheck] from the working folder: run it away from the repo's.
    monkeypatch.chdir(tmp_path)
    return Inputs(tmp_path / "case", exported_onnx["legacy"], pt2_bytes, torchscript_bytes)


def run_cli(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    return result


def one_error_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(PREFIX), stderr
    return lines[0]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_library_raises_the_named_error(case: Case, inputs: Inputs) -> None:
    path = case.build(inputs)
    before = snapshot(inputs.folder)
    with pytest.raises(InputError) as raised:
        inspect_artifact(path)
    error = raised.value
    assert type(error) is case.error, f"{type(error).__name__}: {error}"
    assert error.exit_code == EXIT_INPUT
    assert error.subject == str(path)
    assert case.cause in error.message
    assert "\n" not in str(error)
    assert snapshot(inputs.folder) == before


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cli_prints_one_line_and_exits_2(case: Case, inputs: Inputs) -> None:
    path = case.build(inputs)
    before = snapshot(inputs.folder)
    result = run_cli("inspect", str(path))
    assert result.exit_code == EXIT_INPUT
    line = one_error_line(result.stderr)
    assert line.startswith(f"{PREFIX}{path}: ")
    assert (case.cli_cause or case.cause) in line
    assert snapshot(inputs.folder) == before


def test_missing_external_data_is_a_finding_not_an_error(exported_onnx, tmp_path: Path) -> None:
    """The dynamo exporter's weights live in `dynamo.onnx.data`; here that file is missing."""
    path = _write(tmp_path / "dynamo.onnx", exported_onnx["dynamo-external"])
    before = snapshot(tmp_path)
    findings = inspect_artifact(path)
    missing = [f for f in findings if f.rule == "missing-external-data"]
    assert len(missing) == 1
    assert missing[0].severity.label == "info"
    assert "dynamo.onnx.data" in missing[0].message
    # The graph was still read: the train-mode Dropout is reported as usual.
    assert "training-dropout" in {f.rule for f in findings}

    result = run_cli("inspect", str(path), "--fail-on", "error", "--format", "json")
    assert result.stderr == ""
    report = json.loads(result.stdout)
    assert "missing-external-data" in {f["rule"] for f in report["findings"]}
    assert snapshot(tmp_path) == before


def test_missing_external_data_alone_exits_0(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.onnx", with_external("weights.bin"))
    result = run_cli("inspect", str(path))
    assert result.exit_code == 0
    assert result.stderr == ""
    assert "missing-external-data" in result.stdout
    assert [f.rule for f in inspect_artifact(path)] == ["missing-external-data"]


def test_path_with_spaces_and_non_ascii(tmp_path: Path) -> None:
    folder = tmp_path / "mödel dir"
    path = _write(folder / "ｍodel.onnx", tiny_model().SerializeToString())
    before = snapshot(tmp_path)
    assert inspect_artifact(path) == []
    for target in (path, folder):
        result = run_cli("inspect", str(target), "--format", "json")
        assert result.exit_code == 0, result.output
        assert result.stderr == ""
        assert json.loads(result.stdout)["subjects"] == [str(path)]
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("where", "cause"),
    [
        # A missing report folder is created (docs/ci.md); one blocked by a file is refused.
        ("blocker/report.json", "cannot create the report folder"),
        ("a folder", "cannot write report"),
        ("json=blocker/report.json", "cannot create the report folder"),
    ],
)
def test_unwritable_output(where: str, cause: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    model = _write(tmp_path / "m.onnx", tiny_model().SerializeToString())
    (tmp_path / "a folder").mkdir()
    (tmp_path / "blocker").write_text("")
    before = snapshot(tmp_path)
    result = run_cli("inspect", str(model), "--output", where)
    assert result.exit_code == EXIT_INPUT
    line = one_error_line(result.stderr)
    assert where.rpartition("=")[2] in line
    assert cause in line
    # Nothing half-written is left behind, and the model is untouched.
    assert snapshot(tmp_path) == before


def test_report_into_a_named_pipe_keeps_the_pipe(tmp_path: Path) -> None:
    """`--output /dev/null` or a FIFO is written in place: an atomic rename over it would
    replace the device or pipe with a plain file (as root, /dev/null itself)."""
    model = _write(tmp_path / "m.onnx", tiny_model().SerializeToString())
    pipe = tmp_path / "report.pipe"
    os.mkfifo(pipe)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_bytes()))
    reader.start()
    result = run_cli("inspect", str(model), "--format", "json", "--output", str(pipe))
    reader.join(timeout=30)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(os.stat(pipe).st_mode)
    assert json.loads(received[0])["subjects"] == [str(model)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "report.pipe"]


def test_report_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    model = _write(tmp_path / "m.onnx", tiny_model().SerializeToString())
    (tmp_path / "reports").mkdir()
    real = tmp_path / "reports" / "latest.json"
    real.write_text("old")
    link = tmp_path / "report.json"
    link.symlink_to(real)
    result = run_cli("inspect", str(model), "--format", "json", "--output", str(link))
    assert result.exit_code == 0, result.output
    assert link.is_symlink()
    assert json.loads(real.read_text())["subjects"] == [str(model)]


def test_one_bad_file_among_good_ones(exported_onnx, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    good = _write(tmp_path / "a_train.onnx", exported_onnx["legacy"])
    bad = _write(tmp_path / "b_broken.onnx", exported_onnx["legacy"][:100])
    clean = _write(tmp_path / "c_clean.onnx", tiny_model().SerializeToString())
    before = snapshot(tmp_path)
    result = run_cli("inspect", str(good), str(bad), str(clean), "--format", "json")
    assert result.exit_code == EXIT_INPUT
    line = one_error_line(result.stderr)
    assert line.startswith(f"{PREFIX}{bad}: not a valid ONNX protobuf")
    report = json.loads(result.stdout)
    assert report["subjects"] == [str(good), str(bad), str(clean)]
    assert [e["subject"] for e in report["errors"]] == [str(bad)]
    # Reports name files relative to the root (here the working directory), never absolutely.
    rules = {f["rule"] for f in report["findings"] if f["location"]["artifact"] == good.name}
    assert {"training-dropout", "training-batchnorm"} <= rules
    # The same run over the folder: same files, same outcome.
    folder = run_cli("inspect", str(tmp_path), "--format", "json")
    assert folder.exit_code == EXIT_INPUT
    assert json.loads(folder.stdout)["findings"] == report["findings"]
    assert snapshot(tmp_path) == before


TORCH_CASES = [c for c in CASES if c.name.startswith(("pt2-", "torchscript-", "zip-", "state-"))]


def test_real_cli_prints_one_line_per_damaged_torch_file(inputs: Inputs) -> None:
    """In a real process torch's own log handlers write to stderr; none of it may get through."""
    paths = [
        str(case.build(replace(inputs, folder=inputs.folder / case.name))) for case in TORCH_CASES
    ]
    result = subprocess.run(
        [sys.executable, "-m", "exportcheck", "inspect", *paths],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == EXIT_INPUT
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert [line.split(": ")[2] for line in lines] == paths, result.stderr
    for line, case in zip(lines, TORCH_CASES):
        assert case.cause in line

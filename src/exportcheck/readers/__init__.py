"""Reader dispatch: picks the reader for an artifact file by its suffix and first bytes."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from exportcheck.errors import (
    NotAnArtifactError,
    UnreadableArtifactError,
    UnsupportedArtifactError,
)
from exportcheck.readers.view import ArtifactKind, ArtifactView

if TYPE_CHECKING:
    import zipfile

ARTIFACT_SUFFIXES = {
    ".onnx": ArtifactKind.ONNX,
    ".pt": ArtifactKind.TORCHSCRIPT,
    ".pth": ArtifactKind.TORCHSCRIPT,
    ".ts": ArtifactKind.TORCHSCRIPT,
    ".torchscript": ArtifactKind.TORCHSCRIPT,
    ".pt2": ArtifactKind.EXPORTED_PROGRAM,
}


def _open_zip(path: str) -> zipfile.ZipFile | None:
    import zipfile  # 5 ms of every start, and an ONNX file never needs it

    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
        return None  # NotImplementedError: a zip version or feature zipfile does not read


def detect_kind(path: str) -> ArtifactKind:
    """The artifact kind, by suffix; for torch zips the archive's own layout decides."""
    kind, opened = _detect(path)
    if opened is not None:
        opened.close()
    return kind


def _detect(path: str) -> tuple[ArtifactKind, zipfile.ZipFile | None]:
    """The kind and, for a torch zip, the opened zip, so that its reader does not read the
    central directory a second time."""
    suffix = os.path.splitext(path)[1].lower()
    kind = ARTIFACT_SUFFIXES.get(suffix)
    if kind is None:
        raise UnsupportedArtifactError(
            f"unsupported file type {suffix or '(no suffix)'!r} "
            f"(expected one of {', '.join(sorted(ARTIFACT_SUFFIXES))})",
            subject=path,
        )
    if not os.path.isfile(path):
        # A folder or a FIFO named like a model is never opened (a FIFO would block).
        cause = "not a regular file" if os.path.exists(path) else "no such file"
        raise UnreadableArtifactError(cause, subject=path)
    if kind is ArtifactKind.ONNX:
        return kind, None
    opened = _open_zip(path)
    names = opened.namelist() if opened is not None else []
    if any(
        n.endswith("/archive_format") or ("/models/" in n and n.endswith(".json")) for n in names
    ):
        return ArtifactKind.EXPORTED_PROGRAM, opened
    if any("/code/" in n for n in names):
        return ArtifactKind.TORCHSCRIPT, opened
    if opened is not None:
        opened.close()
    if names:
        raise NotAnArtifactError(
            "a torch.save checkpoint (state dict or pickled object), not a TorchScript "
            "archive or torch.export program; export the model first",
            subject=path,
        )
    if os.path.getsize(path) == 0:
        raise NotAnArtifactError("empty file, not a model", subject=path)
    with open(path, "rb") as file:
        if file.read(4) == b"PK\x03\x04":
            raise UnreadableArtifactError(
                "not a TorchScript or torch.export archive this Python can open (a zip file "
                "that zipfile cannot read: a newer zip feature, or damaged)",
                subject=path,
            )
    raise NotAnArtifactError(
        "not a TorchScript or torch.export archive (not a zip file; a legacy pickled "
        "checkpoint is not a deployable model)",
        subject=path,
    )


def read_artifact(path: str, wanted: frozenset[str]) -> ArtifactView:
    """Reads one artifact file read-only; bad files raise an InputError naming file and cause.

    Every reader parses: none imports torch, unpickles with real classes or runs file content."""
    kind, opened = _detect(path)
    if kind is ArtifactKind.ONNX:
        from exportcheck.readers.onnx import read_onnx

        return read_onnx(path, wanted)
    if kind is ArtifactKind.TORCHSCRIPT:
        from exportcheck.readers.torchscript import read_torchscript

        return read_torchscript(path, wanted, opened)
    if kind is ArtifactKind.EXPORTED_PROGRAM:
        from exportcheck.readers.exported_program import read_exported_program

        return read_exported_program(path, wanted, opened)
    raise UnreadableArtifactError(f"no reader for {kind}", subject=path)  # pragma: no cover

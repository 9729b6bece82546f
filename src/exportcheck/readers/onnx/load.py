"""Parses an ONNX file's protobuf (never its external weights) and rejects what is not a model."""

from __future__ import annotations

import os
from functools import cache

from google.protobuf.message import DecodeError

from exportcheck.errors import UnreadableArtifactError, first_line
from exportcheck.readers.onnx.operators import OPSET, OPSET_SINCE_ONNX
from exportcheck.readers.onnx.protos import (
    DEFAULT_DOMAINS,
    IR_VERSION,
    ModelProto,
    onnx_package_folder,
)


def read_model_bytes(path: str) -> bytes:
    """The file's content, or an UnreadableArtifactError naming why it cannot be read."""
    try:
        if os.path.getsize(path) == 0:
            raise UnreadableArtifactError("empty file, not an ONNX model", subject=path)
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise UnreadableArtifactError(f"cannot read file ({exc.strerror})", subject=path) from None


def load_model(path: str, serialized: bytes | None = None) -> ModelProto:
    """Parses the protobuf (never the external weights) and rejects what is not an ONNX model;
    `serialized`: the file's content where the caller has read it (`read_model_bytes`)."""
    if serialized is None:
        serialized = read_model_bytes(path)
    try:
        model = ModelProto()
        decoded = model.ParseFromString(serialized)
        if decoded is not None and decoded != len(serialized):
            raise DecodeError(
                f"Protobuf decoding consumed too few bytes: {decoded} out of {len(serialized)}"
            )
    except (DecodeError, RecursionError, ValueError, TypeError, MemoryError) as exc:
        cause = first_line(exc, with_type=False)
        raise UnreadableArtifactError(
            f"not a valid ONNX protobuf ({cause})", subject=path
        ) from None
    if not model.HasField("graph") or model.ir_version <= 0 or not model.opset_import:
        raise UnreadableArtifactError(
            "parses as protobuf but is not an ONNX model (no graph, IR version or opset)",
            subject=path,
        )
    if model.ir_version > IR_VERSION:
        raise UnreadableArtifactError(
            f"IR version {model.ir_version} is newer than the installed onnx "
            f"{installed_onnx_version()} knows (up to {IR_VERSION})",
            subject=path,
        )
    # The file decides how many opset imports there are: only the newest default one is checked.
    newest = max(
        (opset.version for opset in model.opset_import if opset.domain in DEFAULT_DOMAINS),
        default=None,
    )
    if newest is not None and not _opset_is_known(newest):
        raise UnreadableArtifactError(
            f"opset {newest} is newer than the installed onnx "
            f"{installed_onnx_version()} knows (up to {_newest_opset()})",
            subject=path,
        )
    return model


@cache
def installed_onnx_version() -> str:
    """The installed onnx's version, from its dist-info folder's name (importlib.metadata takes
    40 ms to import; this is a directory listing)."""
    folder = onnx_package_folder()
    if folder is not None:
        for entry in os.listdir(os.path.dirname(folder)):
            if entry.startswith("onnx-") and entry.endswith(".dist-info"):
                return entry[len("onnx-") : -len(".dist-info")]
    return "unknown"


def _release(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.split(".")[:2]:
        if not part.isdigit():
            return ()
        parts.append(int(part))
    return tuple(parts)


def _opset_is_known(version: int) -> bool:
    # An onnx at least as new as the one that brought OPSET knows it: no need to build onnx's
    # schema registry (it imports the whole onnx package) for the opsets nearly every file uses.
    if version <= OPSET and _release(installed_onnx_version()) >= OPSET_SINCE_ONNX:
        return True
    return version <= _newest_opset()


@cache
def _newest_opset() -> int:
    import onnx.defs

    return onnx.defs.onnx_opset_version()


def opset_versions(model: ModelProto) -> dict[str, int]:
    """The model's opset per domain; "ai.onnx" also answers for the default domain ""."""
    versions = {opset.domain: opset.version for opset in model.opset_import}
    if "ai.onnx" in versions and "" not in versions:
        versions[""] = versions["ai.onnx"]
    return versions

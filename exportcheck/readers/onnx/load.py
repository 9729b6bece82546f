"""Parses an ONNX file's protobuf (never its external weights) and rejects what is not a model."""

from __future__ import annotations

import os

import onnx
from google.protobuf.message import DecodeError

from exportcheck.errors import UnreadableArtifactError, first_line
from exportcheck.readers.onnx.protos import DEFAULT_DOMAINS, ModelProto


def load_model(path: str) -> ModelProto:
    """Parses the protobuf (never the external weights) and rejects what is not an ONNX model."""
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise UnreadableArtifactError(f"cannot read file ({exc.strerror})", subject=path) from None
    if size == 0:
        raise UnreadableArtifactError("empty file, not an ONNX model", subject=path)
    try:
        with open(path, "rb") as handle:
            model = onnx.load_model(handle, load_external_data=False)
    except (DecodeError, RecursionError, ValueError, TypeError, MemoryError) as exc:
        cause = first_line(exc, with_type=False)
        raise UnreadableArtifactError(
            f"not a valid ONNX protobuf ({cause})", subject=path
        ) from None
    except OSError as exc:
        raise UnreadableArtifactError(f"cannot read file ({exc.strerror})", subject=path) from None
    if not model.HasField("graph") or model.ir_version <= 0 or not model.opset_import:
        raise UnreadableArtifactError(
            "parses as protobuf but is not an ONNX model (no graph, IR version or opset)",
            subject=path,
        )
    if model.ir_version > onnx.IR_VERSION:
        raise UnreadableArtifactError(
            f"IR version {model.ir_version} is newer than the installed onnx "
            f"{onnx.__version__} knows (up to {onnx.IR_VERSION})",
            subject=path,
        )
    newest = onnx.defs.onnx_opset_version()
    for opset in model.opset_import:
        if opset.domain in DEFAULT_DOMAINS and opset.version > newest:
            raise UnreadableArtifactError(
                f"opset {opset.version} is newer than the installed onnx "
                f"{onnx.__version__} knows (up to {newest})",
                subject=path,
            )
    return model


def opset_versions(model: ModelProto) -> dict[str, int]:
    """The model's opset per domain; "ai.onnx" also answers for the default domain ""."""
    versions = {opset.domain: opset.version for opset in model.opset_import}
    if "ai.onnx" in versions and "" not in versions:
        versions[""] = versions["ai.onnx"]
    return versions

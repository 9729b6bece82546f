"""torch.jit.load for running an archive (compare/validate); inspection never calls it."""

from __future__ import annotations

import zipfile
from typing import Any

from exportcheck.errors import UnreadableArtifactError, first_line


def load_archive(path: str) -> Any:
    """torch.jit.load on the CPU, turning every failure into a one-line input error."""
    import torch

    if not zipfile.is_zipfile(path):
        raise UnreadableArtifactError(
            "not a TorchScript archive (not a zip file; a pickled checkpoint or state dict "
            "is not a deployable model)",
            subject=path,
        )
    try:
        return torch.jit.load(path, map_location="cpu")
    except Exception as exc:
        cause = first_line(exc, with_type=False)
        hint = ""
        if "constants.pkl" in cause or "data.pkl" in cause or "archive" in cause.lower():
            hint = " (is it a torch.save checkpoint rather than a TorchScript archive?)"
        raise UnreadableArtifactError(
            f"cannot load as TorchScript: {cause}{hint}", subject=path
        ) from None

"""Loading TorchScript archives and torch.export programs to run them.

These loaders execute what the file holds (pickles, TorchScript `__setstate__`, registered
pytree types), so only `validate` and `compare` use them, on artifacts they were asked to run;
static inspection parses archives with the readers and never comes here.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
import zipfile
from collections.abc import Iterator
from typing import Any

from exportcheck.errors import UnreadableArtifactError, first_line


class _Held(logging.Filter):
    """Keeps torch.export's log records instead of letting them reach stderr."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.records.append(record)
        return False


@contextlib.contextmanager
def torch_warnings_held() -> Iterator[None]:
    """torch deprecates `torch.jit.load` and warns of archive versions on every load: warnings
    about exportcheck's own loading, not the user's code, that would otherwise fill the warnings
    summary of the test run the pytest plugin works in."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


def load_torchscript(path: str) -> Any:
    """torch.jit.load on the CPU, turning every failure into a one-line input error."""
    import torch

    if not zipfile.is_zipfile(path):
        raise UnreadableArtifactError(
            "not a TorchScript archive (not a zip file; a pickled checkpoint or state dict "
            "is not a deployable model)",
            subject=path,
        )
    try:
        with torch_warnings_held():
            return torch.jit.load(path, map_location="cpu")
    except Exception as exc:
        cause = first_line(exc, with_type=False)
        hint = ""
        if "constants.pkl" in cause or "data.pkl" in cause or "archive" in cause.lower():
            hint = " (is it a torch.save checkpoint rather than a TorchScript archive?)"
        raise UnreadableArtifactError(
            f"cannot load as TorchScript: {cause}{hint}", subject=path
        ) from None


def load_exported_program(path: str) -> Any:
    """torch.export.load, turning every failure into a one-line input error."""
    import torch

    if not zipfile.is_zipfile(path):
        raise UnreadableArtifactError(
            "not a torch.export archive (.pt2 files are zip archives)", subject=path
        )
    # torch.export.load logs a damaged archive's traceback as a warning, then raises an error
    # that only says "check the warnings above": hold the log, report its cause in one line.
    logger, held = logging.getLogger("torch.export"), _Held()
    logger.addFilter(held)
    try:
        with torch_warnings_held():
            return torch.export.load(path)
    except Exception as exc:
        logged = [r.exc_info[1] for r in held.records if r.exc_info and r.exc_info[1]]
        cause = first_line(logged[-1] if logged else exc, with_type=False)
        raise UnreadableArtifactError(
            f"cannot load as a torch.export program: {cause} (saved by another torch "
            "version, or not an ExportedProgram?)",
            subject=path,
        ) from None
    finally:
        logger.removeFilter(held)


def load_torch_artifact(path: str, kind: str) -> Any:
    """A TorchScript module or an ExportedProgram, loaded on the CPU."""
    if kind == "torchscript":
        return load_torchscript(path)
    return load_exported_program(path)

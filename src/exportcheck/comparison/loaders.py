"""Loading TorchScript archives and torch.export programs to run them.

These loaders execute what the file holds (pickles, TorchScript `__setstate__`, registered
pytree types), so only `validate` and `compare` use them, on artifacts they were asked to run;
static inspection parses archives with the readers and never comes here.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import types
import typing
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


class _SchemaTyping(types.ModuleType):
    """`typing` as torch.export's deserializer sees it while exportcheck loads a program, with
    the type hints of torch's schema classes resolved once: torch resolves them again for every
    object it deserializes (pytorch/pytorch#196452), which was most of a `.pt2` load here (0.20 of
    0.33 s for a 6-layer transformer encoder). Every other call goes to `typing` unchanged."""

    def __init__(self, schema_globals: dict[str, Any]) -> None:
        super().__init__("typing")
        # typing's names as attributes of this module, not looked up through a fallback: the
        # deserializer calls typing.get_origin and typing.get_args as often as get_type_hints
        self.__dict__.update((k, v) for k, v in vars(typing).items() if not k.startswith("__"))
        self.schema_globals = schema_globals
        self.resolved: dict[Any, dict[str, Any]] = {}
        self.get_type_hints = self._get_type_hints

    def _get_type_hints(
        self, obj: Any, globalns: Any = None, localns: Any = None, include_extras: bool = False
    ) -> dict[str, Any]:
        if globalns is not self.schema_globals or localns is not None or include_extras:
            return typing.get_type_hints(obj, globalns, localns, include_extras)
        if obj not in self.resolved:
            self.resolved[obj] = typing.get_type_hints(obj, globalns=globalns)
        return dict(self.resolved[obj])


# torch.export.load keeps the program it is deserializing in a module global
# (_CURRENT_DESERIALIZER): a second load on another thread meanwhile fails ("already set").
_exported_program_load = threading.Lock()


@contextlib.contextmanager
def _schema_type_hints_resolved_once() -> Iterator[None]:
    """While a load runs (holding `_exported_program_load`), torch's deserializer resolves each
    schema class's type hints once; afterwards it sees `typing` itself again. A torch whose
    deserializer does not look them up this way is left as it is."""
    try:
        from torch._export.serde import schema, serialize
    except ImportError:
        yield
        return
    if getattr(serialize, "typing", None) is not typing:
        yield
        return
    serialize.typing = _SchemaTyping(vars(schema))
    try:
        yield
    finally:
        serialize.typing = typing


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
        with _exported_program_load, torch_warnings_held(), _schema_type_hints_resolved_once():
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

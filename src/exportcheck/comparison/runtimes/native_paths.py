"""A path every runtime can open. ONNX Runtime, tract and torch take a path as UTF-8 text, but a
POSIX file name may be any bytes (a folder named in Latin-1), which Python holds with surrogate
escapes and those runtimes refuse: tract "surrogates not allowed", ONNX Runtime "incompatible
constructor arguments", and torch's legacy exporter cannot write there. Such a file is reached
through a link in a temporary folder of exportcheck's own: to its folder, where a runtime finds
the external data beside the model as in the user's folder, or, when the file's own name is not
text, to the file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

from exportcheck.errors import UnreadableArtifactError


def opens_as_text(path: str) -> bool:
    """Whether the path's bytes are UTF-8, as the runtimes' bindings pass it on."""
    try:
        os.fsencode(path).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@contextlib.contextmanager
def runtime_folder(folder: str) -> Iterator[str]:
    """`folder` itself when the runtimes (and torch's exporters, which write through it) can
    open it; else, for the duration, a linked path to it."""
    if opens_as_text(os.path.abspath(folder)):
        yield folder
        return
    with _link(folder, "folder") as link:
        yield link


@contextlib.contextmanager
def runtime_path(path: str, kind: str) -> Iterator[str]:
    """`path` itself when the runtimes can open it; else, for the duration, a linked path to the
    same file (the user's folder is never written). UnreadableArtifactError for an ONNX file
    whose own name is not text and whose external data a runtime looks for beside that name."""
    absolute = os.path.abspath(path)
    if opens_as_text(absolute):
        yield path
        return
    folder, name = os.path.split(absolute)
    if opens_as_text(name):
        with runtime_folder(folder) as linked:
            yield os.path.join(linked, name)
        return
    if kind == "onnx" and _has_external_data(absolute):
        raise UnreadableArtifactError(
            "its file name is not UTF-8, which ONNX Runtime and tract cannot open, and its "
            "external data is found only beside that name: rename the file",
            subject=path,
        )
    suffix = os.path.splitext(name)[1]
    with _link(absolute, "artifact" + (suffix if opens_as_text(suffix) else "")) as link:
        yield link


@contextlib.contextmanager
def _link(target: str, name: str) -> Iterator[str]:
    """A link named `name` to `target`, in a temporary folder of exportcheck's own."""
    with tempfile.TemporaryDirectory(prefix="exportcheck-path-") as links:
        link = os.path.join(links, name)
        os.symlink(os.path.realpath(target), link)
        yield link


def _has_external_data(path: str) -> bool:
    from exportcheck.readers.onnx.external_data import external_data_files

    return bool(external_data_files(path))

"""The files a run reads (models, their ONNX external data, target sources, inputs, config), so
that no report or artifact is ever written over one of them."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from exportcheck.errors import InputError

_MODEL_SUFFIXES = (".onnx", ".pt", ".pth", ".ts", ".torchscript", ".pt2")


def model_files(paths: Iterable[str]) -> list[str]:
    """The model files named, and those under named folders."""
    found: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            for folder, _, names in os.walk(path):
                found += [
                    os.path.join(folder, n) for n in names if n.lower().endswith(_MODEL_SUFFIXES)
                ]
        elif os.path.exists(path):
            found.append(path)
    return found


def onnx_side_files(model: str) -> list[str]:
    """The external-data files an ONNX model names (the graph is parsed, no weight is read)."""
    from exportcheck.readers.onnx.external_data import external_data_files  # protobuf: 20 ms

    try:
        return external_data_files(model)
    except InputError:  # an unreadable model is the reader's error to report, not this one's
        return []


def target_sources(specs: Sequence[str]) -> list[str]:
    """The `.py` files of `file.py:callable` targets (folders expanded, nothing imported)."""
    if not specs:
        return []
    from exportcheck.targets.python_targets import (
        expand_targets,
        split_spec,
    )  # hashlib, which a text report never needs

    sources = []
    for spec in expand_targets(specs):
        location, _ = split_spec(spec)
        if location.endswith(".py") or os.sep in location or "/" in location:
            sources.append(location)
    return sources


def run_inputs(
    *,
    models: Iterable[str] = (),
    targets: Sequence[str] = (),
    inputs_file: str | None = None,
    config_file: str | None = None,
    destinations: Iterable[str] = (),
) -> list[str]:
    """Every existing file the run reads. External data must lie in its model's folder, so an
    ONNX model is parsed for it only when an existing destination lies there too (a file that
    does not exist yet is no input)."""
    files = model_files(models)
    places = [os.path.realpath(d) for d in destinations if os.path.lexists(d)]
    files += [
        side
        for model in list(files)
        if model.lower().endswith(".onnx") and _holds_any(os.path.dirname(model), places)
        for side in onnx_side_files(model)
    ]
    files += target_sources(targets)
    files += [f for f in (inputs_file, config_file) if f]
    return [f for f in files if os.path.exists(f)]


def _holds_any(folder: str, paths: Iterable[str]) -> bool:
    base = os.path.realpath(folder or ".")
    return any(os.path.commonpath([path, base]) == base for path in paths)

"""Turns `file.py:callable`, `package.module:callable` or a directory into models and inputs.

Loading a Python target executes the user's code (that is how the model is built); inspecting an
artifact file never does.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib
import importlib.util
import math
import os
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from exportcheck.errors import (
    ForkedChildError,
    InputSpecError,
    TargetError,
    clipped,
    first_line,
)

DEFAULT_CALLABLE = "build"
_SHAPE = re.compile(r"^\s*(\d+(?:\s*[x,]\s*\d+)*)\s*(?::\s*([a-z0-9]+))?\s*$")
_DTYPES = {
    "float32": "float32",
    "float": "float32",
    "f32": "float32",
    "float16": "float16",
    "half": "float16",
    "f16": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float64": "float64",
    "double": "float64",
    "f64": "float64",
    "int64": "int64",
    "long": "int64",
    "i64": "int64",
    "int32": "int32",
    "int": "int32",
    "i32": "int32",
    "bool": "bool",
}


@dataclass(frozen=True)
class Target:
    """A built model and its example inputs, with the label the user gave."""

    label: str
    model: Any
    inputs: tuple[Any, ...]


def has_build(path: str) -> bool:
    """Whether a .py file defines a top-level `build` (read with ast, nothing executed)."""
    try:
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), filename=path)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return False
    return any(
        isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == DEFAULT_CALLABLE
        for node in tree.body
    )


def expand_targets(specs: Sequence[str]) -> list[str]:
    """Directories become one `file.py:build` per file that defines `build()`."""
    expanded: list[str] = []
    for spec in specs:
        if os.path.isdir(spec):
            found = [
                f"{os.path.join(spec, name)}:{DEFAULT_CALLABLE}"
                for name in sorted(os.listdir(spec))
                if name.endswith(".py")
                and not name.startswith("_")
                and has_build(os.path.join(spec, name))
            ]
            if not found:
                raise TargetError("no .py file with a build() in this directory", subject=spec)
            expanded.extend(found)
        else:
            expanded.append(spec)
    return expanded


def split_spec(spec: str) -> tuple[str, str]:
    """`a/b.py:make` -> ("a/b.py", "make"); a bare `a/b.py` means its `build`."""
    head, sep, tail = spec.rpartition(":")
    if sep and tail and not tail.startswith(("\\", "/")) and head:
        return head, tail
    if spec.endswith(".py"):
        return spec, DEFAULT_CALLABLE
    raise TargetError(
        "expected path/to/file.py:callable, package.module:callable or a directory",
        subject=spec,
    )


@contextlib.contextmanager
def _sys_path(folder: str) -> Iterator[None]:
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)


@contextlib.contextmanager
def _no_bytecode() -> Iterator[None]:
    """Importing a target must not leave `__pycache__` folders in the user's tree."""
    previous = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        yield
    finally:
        sys.dont_write_bytecode = previous


def _import_file(path: str, spec: str) -> Any:
    if not os.path.isfile(path):
        raise TargetError(f"file {path!r} does not exist", subject=spec)
    absolute = os.path.abspath(path)
    digest = hashlib.sha1(os.fsencode(absolute)).hexdigest()[:12]
    name = f"exportcheck_target_{digest}"
    module_spec = importlib.util.spec_from_file_location(name, absolute)
    if module_spec is None or module_spec.loader is None:
        raise TargetError(f"cannot import {path!r}", subject=spec)
    module = importlib.util.module_from_spec(module_spec)
    # Registered as importlib's recipe does, so `inspect` finds the source of the target's
    # classes (the audit points at them) and dataclasses or pickling inside it work.
    sys.modules[name] = module
    try:
        _execute(module_spec, module, path, spec)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _execute(module_spec: Any, module: Any, path: str, spec: str) -> None:
    """Runs the target file's module code; its failures as TargetErrors naming the file."""
    try:
        module_spec.loader.exec_module(module)
    except SyntaxError as error:
        raise TargetError(
            f"syntax error in {path!r}: {error.msg} (line {error.lineno})", subject=spec
        ) from None
    except SystemExit as exit_:
        raise TargetError(
            f"importing {path!r} called sys.exit({exit_.code!r})", subject=spec
        ) from None
    except Exception as error:
        raise TargetError(f"importing {path!r} raised {first_line(error)}", subject=spec) from None


def _import_module(name: str, spec: str) -> Any:
    try:
        return importlib.import_module(name)
    except SystemExit as exit_:
        raise TargetError(
            f"importing {name!r} called sys.exit({exit_.code!r})", subject=spec
        ) from None
    except ModuleNotFoundError as error:
        raise TargetError(f"module {error.name!r} not found", subject=spec) from None
    except Exception as error:
        raise TargetError(f"importing {name!r} raised {first_line(error)}", subject=spec) from None


def as_input_tuple(value: Any, spec: str) -> tuple[Any, ...]:
    import torch

    if isinstance(value, torch.Tensor):
        return (value,)
    if isinstance(value, (tuple, list)) and all(isinstance(v, torch.Tensor) for v in value):
        return tuple(value)
    raise InputSpecError(
        f"example inputs must be a tensor or a tuple/list of tensors, got {type(value).__name__}",
        subject=spec,
    )


def build_target(
    spec: str,
    input_shapes: Sequence[str] = (),
    inputs_file: str | None = None,
) -> Target:
    """Imports the target, calls it, and settles the example inputs."""
    from torch import nn

    location, attribute = split_spec(spec)
    is_file = location.endswith(".py") or os.sep in location or "/" in location
    # While the target's code runs, its own folder is importable, as `python file.py` has it
    # (a `package.module` is found from the current directory first, as `python -m` does), and
    # no import leaves `__pycache__` in the user's tree: `build()` may import its siblings.
    folder = os.path.dirname(os.path.abspath(location)) if is_file else os.getcwd()
    with _sys_path(folder), _no_bytecode():
        module = _import_file(location, spec) if is_file else _import_module(location, spec)
        try:
            factory = getattr(module, attribute)
        except AttributeError:
            raise TargetError(
                f"{location!r} has no attribute {attribute!r}", subject=spec
            ) from None
        if isinstance(factory, nn.Module):
            built: Any = factory
        elif callable(factory):
            built = _call_factory(factory, attribute, spec)
        else:
            raise TargetError(f"{attribute!r} is not callable", subject=spec)
    inputs: tuple[Any, ...] | None = None
    if isinstance(built, tuple) and len(built) == 2 and isinstance(built[0], nn.Module):
        model, raw_inputs = built
        inputs = as_input_tuple(raw_inputs, spec)
    elif isinstance(built, nn.Module):
        model = built
    else:
        raise TargetError(
            f"{attribute}() returned {type(built).__name__}; expected an nn.Module or "
            "(module, example_inputs)",
            subject=spec,
        )
    if inputs_file:
        inputs = load_inputs_file(inputs_file)
    elif input_shapes:
        inputs = inputs_from_shapes(input_shapes)
    if inputs is None:
        raise InputSpecError(
            "the target returned only a module: give --input-shape (e.g. 1x3x224x224) "
            "or --inputs FILE",
            subject=spec,
        )
    return Target(spec, model, inputs)


def _call_factory(factory: Any, attribute: str, spec: str) -> Any:
    """Calls the user's `build()`; an exit, and a return into a process it forked, are the
    target's doing and end its check (the forked copy must not go on to export and report)."""
    owner = os.getpid()
    try:
        return factory()
    except SystemExit as exit_:
        raise TargetError(f"{attribute}() called sys.exit({exit_.code!r})", subject=spec) from None
    except Exception as error:
        raise TargetError(f"{attribute}() raised {first_line(error)}", subject=spec) from None
    finally:
        if os.getpid() != owner:
            raise ForkedChildError(spec)


def parse_shape(text: str) -> tuple[tuple[int, ...], str]:
    match = _SHAPE.match(text.lower())
    if not match:
        raise InputSpecError(
            f"malformed input shape {clipped(text)} (expected e.g. 1x3x224x224 or 2x128:int64)",
            subject="--input-shape",
        )
    digits = re.split(r"\s*[x,]\s*", match.group(1))
    if any(len(d) > 9 for d in digits) or len(digits) > 64:
        raise InputSpecError(f"input shape {clipped(text)} is too large", subject="--input-shape")
    dims = tuple(int(d) for d in digits)
    if any(d <= 0 for d in dims):
        raise InputSpecError(
            f"dimensions must be positive in {clipped(text)}", subject="--input-shape"
        )
    if any(d > 1 << 20 for d in dims) or math.prod(dims) > 1 << 30:
        raise InputSpecError(f"input shape {clipped(text)} is too large", subject="--input-shape")
    dtype = match.group(2) or "float32"
    if dtype not in _DTYPES:
        raise InputSpecError(
            f"unknown dtype {dtype!r} in {clipped(text)} (choose from {', '.join(sorted(set(_DTYPES)))})",
            subject="--input-shape",
        )
    return dims, _DTYPES[dtype]


def inputs_from_shapes(shapes: Sequence[str]) -> tuple[Any, ...]:
    import torch

    generator = torch.Generator().manual_seed(0)
    tensors = []
    for text in shapes:
        dims, dtype_name = parse_shape(text)
        dtype = getattr(torch, dtype_name)
        if dtype.is_floating_point:
            tensors.append(torch.randn(dims, generator=generator).to(dtype))
        elif dtype == torch.bool:
            tensors.append(torch.randint(0, 2, dims, generator=generator).bool())
        else:
            tensors.append(torch.randint(0, 10, dims, generator=generator, dtype=dtype))
    return tuple(tensors)


def load_inputs_file(path: str) -> tuple[Any, ...]:
    """Example inputs from a `.pt` (weights_only, never unpickling code) or an `.npz`."""
    import torch

    if not os.path.isfile(path):
        raise InputSpecError("no such file", subject=path)
    if path.endswith(".npz"):
        import numpy as np

        try:
            with np.load(path, allow_pickle=False) as archive:
                names = sorted(archive.files, key=_natural_key)
                return tuple(torch.from_numpy(np.array(archive[name])) for name in names)
        except Exception as error:
            raise InputSpecError(f"cannot read .npz: {first_line(error)}", subject=path) from None
    try:
        value = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise InputSpecError(
            f"cannot load with torch.load(weights_only=True): {first_line(error)}", subject=path
        ) from None
    if isinstance(value, dict):
        value = [value[k] for k in sorted(value, key=lambda k: _natural_key(str(k)))]
    return as_input_tuple(value, path)


def _natural_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]

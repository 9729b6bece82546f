"""Exports an eval-mode model to each deployable format; a format that fails is reported, not raised."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

FORMATS = ("onnx", "onnx-legacy", "torchscript-trace", "torchscript-script", "exported-program")
SUFFIXES = {
    "onnx": ".onnx",
    "onnx-legacy": ".legacy.onnx",
    "torchscript-trace": ".trace.pt",
    "torchscript-script": ".script.pt",
    "exported-program": ".pt2",
}


class ExportFailed(Exception):
    """An exporter refused the model; the message is the exporter's own reason, on one line."""


@dataclass(frozen=True)
class Exported:
    format: str
    path: str
    dynamic_batch: bool


def input_names(count: int) -> list[str]:
    return [f"input_{i}" for i in range(count)]


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    for line in text.splitlines():
        line = line.strip()
        if line:
            return f"{type(error).__name__}: {line}"[:400]
    return type(error).__name__


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Exporters print progress, warnings and (the legacy one, from C++) whole graphs on
    failure; a library must not, so stdout and stderr are silenced down to the descriptors."""
    logger = logging.getLogger("torch")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    sys.stdout.flush()
    sys.stderr.flush()
    saved: list[tuple[int, int]] = []
    try:
        with open(os.devnull, "w") as sink:
            for fd in (1, 2):
                try:
                    saved.append((fd, os.dup(fd)))
                    os.dup2(sink.fileno(), fd)
                except OSError:
                    pass
            with (
                warnings.catch_warnings(),
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                warnings.simplefilter("ignore")
                yield
    finally:
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
        logger.setLevel(previous)


def _batch_dims(inputs: Sequence[Any], dynamic: bool) -> Any:
    import torch

    if not dynamic:
        return None
    batch = torch.export.Dim("batch", min=1, max=4096)
    return tuple({0: batch} if getattr(x, "dim", lambda: 0)() > 0 else None for x in inputs)


def export_one(
    model: Any, inputs: tuple[Any, ...], fmt: str, path: str, *, dynamic_batch: bool
) -> Exported:
    """One export of `model` as it is (the caller has put it in eval mode)."""
    import torch

    try:
        with _quiet():
            if fmt == "onnx":
                try:
                    program = torch.onnx.export(
                        model,
                        inputs,
                        dynamo=True,
                        input_names=input_names(len(inputs)),
                        dynamic_shapes=_batch_dims(inputs, dynamic_batch),
                        verbose=False,
                    )
                except Exception:
                    if not dynamic_batch:
                        raise
                    dynamic_batch = False
                    program = torch.onnx.export(
                        model,
                        inputs,
                        dynamo=True,
                        input_names=input_names(len(inputs)),
                        verbose=False,
                    )
                program.save(path)
            elif fmt == "onnx-legacy":
                names = input_names(len(inputs))

                def legacy(axes: dict[str, dict[int, str]] | None) -> None:
                    torch.onnx.export(
                        model,
                        inputs,
                        path,
                        dynamo=False,
                        input_names=names,
                        dynamic_axes=axes,
                        training=torch.onnx.TrainingMode.PRESERVE,
                        do_constant_folding=True,
                    )

                try:
                    legacy({n: {0: "batch"} for n in names} if dynamic_batch else None)
                except Exception:
                    if not dynamic_batch:
                        raise
                    dynamic_batch = False
                    legacy(None)
            elif fmt == "torchscript-trace":
                traced = torch.jit.trace(model, inputs, check_trace=False)
                traced.save(path)
                dynamic_batch = True
            elif fmt == "torchscript-script":
                torch.jit.script(model).save(path)
                dynamic_batch = True
            elif fmt == "exported-program":
                try:
                    program = torch.export.export(
                        model, inputs, dynamic_shapes=_batch_dims(inputs, dynamic_batch)
                    )
                except Exception:
                    if not dynamic_batch:
                        raise
                    dynamic_batch = False
                    program = torch.export.export(model, inputs)
                torch.export.save(program, path)
            else:
                raise ExportFailed(f"unknown format {fmt!r}")
    except ExportFailed:
        raise
    except Exception as error:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise ExportFailed(_first_line(error)) from None
    return Exported(fmt, path, dynamic_batch)

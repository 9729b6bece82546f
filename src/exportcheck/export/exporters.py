"""Exports an eval-mode model to each deployable format; a format that fails is reported, not raised."""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from exportcheck.errors import first_line

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
    dynamic_batch: bool | None = None
    """True where the exporter knows the artifact takes any batch though it declares no shapes
    (TorchScript); None: as the artifact declares (`comparison.artifact_checks.declared_shapes`)."""


def input_names(count: int) -> list[str]:
    return [f"input_{i}" for i in range(count)]


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


def _batch_dims(model: Any, inputs: Sequence[Any]) -> Any:
    """Dim 0 of every tensor input left to torch.export to decide: dynamic where the model
    allows it, specialized (without failing) where it does not, e.g. for a batch of one.

    torch.export matches `dynamic_shapes` to `forward`'s parameters, so inputs that a
    `*args` parameter collects are given to it as one tuple."""
    import torch

    auto = getattr(torch.export.Dim, "AUTO", None) or torch.export.Dim("batch", min=1, max=4096)
    dims = [{0: auto} if getattr(x, "dim", lambda: 0)() > 0 else None for x in inputs]
    try:
        parameters = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return tuple(dims)
    for index, parameter in enumerate(parameters):
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            return (*dims[:index], tuple(dims[index:]))
        if parameter.kind not in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            break
    return tuple(dims)


class Exporter:
    """Exports one eval-mode model to each format. The torch.export program is made once and
    serves both the dynamo ONNX exporter and the .pt2 archive."""

    def __init__(self, model: Any, inputs: tuple[Any, ...]) -> None:
        self.model = model
        self.inputs = inputs
        self._program: Any = None
        self._program_error: str | None = None

    def program(self) -> Any:
        import torch

        if self._program is None and self._program_error is None:
            try:
                with _quiet():
                    self._program = torch.export.export(
                        self.model, self.inputs, dynamic_shapes=_batch_dims(self.model, self.inputs)
                    )
            except Exception as error:
                self._program_error = first_line(error)
        if self._program is None:
            raise ExportFailed(self._program_error or "torch.export failed")
        return self._program

    def export(self, fmt: str, path: str) -> Exported:
        """One artifact; an exporter's refusal becomes ExportFailed with its reason."""
        try:
            exported = self._export(fmt, path)
        except ExportFailed:
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
        except Exception as error:
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise ExportFailed(first_line(error)) from None
        return exported

    def _export(self, fmt: str, path: str) -> Exported:
        import torch

        names = input_names(len(self.inputs))
        if fmt == "exported-program":
            program = self.program()
            with _quiet():
                torch.export.save(program, path)
            return Exported(fmt, path)
        if fmt == "onnx":
            try:
                source = self.program()
            except ExportFailed:
                source = self.model  # the dynamo exporter has fallbacks of its own
            with _quiet():
                onnx_program = torch.onnx.export(
                    source, self.inputs, dynamo=True, input_names=names, verbose=False
                )
                onnx_program.save(path)
            return Exported(fmt, path)
        with _quiet():
            if fmt == "onnx-legacy":

                def legacy(axes: dict[str, dict[int, str]] | None) -> None:
                    torch.onnx.export(
                        self.model,
                        self.inputs,
                        path,
                        dynamo=False,
                        input_names=names,
                        dynamic_axes=axes,
                        training=torch.onnx.TrainingMode.PRESERVE,
                        do_constant_folding=True,
                    )

                try:
                    legacy({n: {0: "batch"} for n in names})
                except Exception:
                    legacy(None)
                return Exported(fmt, path)
            if fmt == "torchscript-trace":
                torch.jit.trace(self.model, self.inputs, check_trace=False).save(path)
                return Exported(fmt, path, True)
            if fmt == "torchscript-script":
                torch.jit.script(self.model).save(path)
                return Exported(fmt, path, True)
        raise ExportFailed(f"unknown format {fmt!r}")

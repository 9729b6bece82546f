"""Mode handling that never leaves a trace on the user's model: snapshots and restores."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModeSnapshot:
    """Every submodule's own `training` flag, by module object."""

    flags: tuple[tuple[Any, bool], ...]

    @classmethod
    def take(cls, model: Any) -> ModeSnapshot:
        return cls(tuple((module, module.training) for module in model.modules()))

    def restore(self) -> None:
        for module, training in self.flags:
            module.training = training


@dataclass(frozen=True)
class BufferSnapshot:
    """Copies of every buffer, so a train-mode forward cannot leave BatchNorm statistics moved."""

    buffers: tuple[tuple[Any, Any], ...]

    @classmethod
    def take(cls, model: Any) -> BufferSnapshot:
        return cls(tuple((b, b.detach().clone()) for b in model.buffers()))

    def restore(self) -> None:
        import torch

        with torch.no_grad():
            for buffer, saved in self.buffers:
                buffer.copy_(saved)


@contextlib.contextmanager
def preserved(model: Any) -> Iterator[Any]:
    """Restores each submodule's own flag and every buffer on exit, whatever happened inside."""
    modes = ModeSnapshot.take(model)
    buffers = BufferSnapshot.take(model)
    try:
        yield model
    finally:
        modes.restore()
        buffers.restore()


@contextlib.contextmanager
def eval_mode(model: Any, *, inference: bool = True) -> Iterator[Any]:
    """Runs a block with `model.eval()` (and `torch.inference_mode`), then puts every submodule
    back to its own previous flag. Unlike a blanket `model.train()` afterwards, modules that were
    frozen in eval mode on purpose stay frozen."""
    import torch

    modes = ModeSnapshot.take(model)
    model.eval()
    try:
        if inference:
            with torch.inference_mode():
                yield model
        else:
            yield model
    finally:
        modes.restore()


@contextlib.contextmanager
def batch_statistics_mode(model: Any) -> Iterator[Any]:
    """Train mode with every Dropout off: what a model exported with BatchNorm in training mode
    computes, for attributing a mismatch. Flags and buffers are restored on exit."""
    import torch
    from torch import nn

    dropout_types = (
        nn.Dropout,
        nn.Dropout1d,
        nn.Dropout2d,
        nn.Dropout3d,
        nn.AlphaDropout,
        nn.FeatureAlphaDropout,
    )
    with preserved(model):
        model.train()
        for module in model.modules():
            if isinstance(module, dropout_types):
                module.eval()
        with torch.no_grad():
            yield model

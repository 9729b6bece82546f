"""torch: TorchScript archives and ExportedPrograms on each torch device."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from exportcheck.comparison.loaders import load_torch_artifact
from exportcheck.comparison.runtimes.base import Runner, RunnerUnavailable, Runtime
from exportcheck.numerics.metrics import flatten, to_numpy


def torch_runner(path: str, kind: str, device: str, loaded: Any = None) -> Runner:
    """Runs a TorchScript archive or ExportedProgram in torch. `loaded` (CPU) is reused on the
    CPU; another device gets its own copy, since moving a ScriptModule moves it in place."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise RunnerUnavailable("CUDA is not available to torch")
    if loaded is None or device != "cpu":
        loaded = load_torch_artifact(path, kind)
    module = loaded.to(device) if kind == "torchscript" else loaded.module()
    if kind != "torchscript" and device != "cpu":
        module = module.to(device)
    return pytorch_runner(module, device)


def pytorch_runner(model: Any, device: str) -> Runner:
    """A torch module run under inference mode: the eval-mode model itself (the caller holds
    it in eval mode), a ScriptModule or an ExportedProgram's module."""
    import torch

    def call(inputs: Sequence[Any]) -> list[np.ndarray]:
        moved = [x.to(device) for x in inputs]
        with torch.inference_mode():
            return [to_numpy(t) for t in flatten(model(*moved))]

    return Runner("torch", device, None, None, [], call)


class TorchRuntime(Runtime):
    name = "torch"
    title = "torch"
    package = "torch"
    extra = "validate"
    kinds = frozenset({"torchscript", "exported-program"})

    def options(self, kind: str, device: str) -> Sequence[str | None]:
        return (None,)

    def load(self, path: str, kind: str, device: str, option: str | None, loaded: Any) -> Runner:
        return torch_runner(path, kind, device, loaded)

    def describe(self) -> str:
        import torch

        return f"torch {torch.__version__}"

"""Runs artifacts: ONNX Runtime sessions per provider and optimization level, TorchScript and
ExportedPrograms on torch devices. Each runner is created once and run as often as needed."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from exportcheck.comparison.loaders import load_torch_artifact
from exportcheck.errors import MissingExternalDataError, UnreadableArtifactError
from exportcheck.numerics.metrics import flatten, to_numpy

OPTIMIZATION_LEVELS = {
    "disable_all": "ORT_DISABLE_ALL",
    "default": "ORT_ENABLE_ALL",
}


# ORT prefixes each message with its status ("[ONNXRuntimeError] : 1 : FAIL : ") and often with
# the C++ source location and signature that raised it; the user needs what follows them.
_ORT_STATUS = re.compile(r"\[ONNXRuntimeError\] : \d+ : \w+ : ")
_ORT_SOURCE = re.compile(r"(?:\S*/)?\w+\.(?:cc|cpp|h):\d+ (?:[\w:~<>]+\([^()]*\)(?: const)? )?")


def ort_message(error: BaseException) -> str:
    """ONNX Runtime's error as one line: its innermost status message, without source paths."""
    text = " ".join(str(error).split())
    text = _ORT_STATUS.split(text)[-1]
    return _ORT_SOURCE.sub("", text).strip() or type(error).__name__


class RunnerUnavailable(Exception):
    """A runtime, provider or device that is not there; the report says it was skipped."""


@dataclass
class Runner:
    """Something that maps input tensors to a list of numpy outputs, with a label."""

    runtime: str
    device: str
    provider: str | None
    optimization: str | None
    output_names: list[str]
    call: Any

    def run(self, inputs: Sequence[Any]) -> list[np.ndarray]:
        return self.call(inputs)


def check_onnx_external_data(path: str) -> None:
    """Before ORT reads anything: the reader's one walk refuses escaping locations and notes a
    missing side file, which a run cannot do without."""
    from exportcheck.readers.onnx import read_onnx

    for note in read_onnx(path, frozenset()).notes:
        if note.code == "missing-external-data":
            raise MissingExternalDataError(
                f"{note.message.split(';')[0]}: the model cannot run", subject=path
            )


def onnx_runner(path: str, device: str, optimization: str) -> Runner:
    import onnxruntime as ort

    provider = "CUDAExecutionProvider" if device == "cuda" else "CPUExecutionProvider"
    if provider not in ort.get_available_providers():
        raise RunnerUnavailable(
            f"{provider} is not available in this onnxruntime "
            f"({ort.__version__}; install onnxruntime-gpu for CUDA)"
        )
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(
        ort.GraphOptimizationLevel, OPTIMIZATION_LEVELS[optimization]
    )
    # ORT logs its own errors in colour on stderr as well as raising them; the exception's
    # message goes into the report, so the log stays silent (4: fatal only).
    options.log_severity_level = 4
    try:
        session = ort.InferenceSession(path, sess_options=options, providers=[provider])
    except Exception as error:
        raise UnreadableArtifactError(
            f"onnxruntime cannot load the model: {ort_message(error)}", subject=path
        ) from None
    names = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]

    def call(inputs: Sequence[Any]) -> list[np.ndarray]:
        if len(inputs) != len(names):
            raise ValueError(f"the model takes {len(names)} input(s), {len(inputs)} given")
        feed = {name: to_numpy(x) for name, x in zip(names, inputs)}
        try:
            results = session.run(outputs, feed)
        except Exception as error:
            raise RuntimeError(ort_message(error)) from None
        return [np.asarray(v) for v in results]

    return Runner("onnxruntime", device, provider, optimization, outputs, call)


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

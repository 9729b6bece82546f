"""ONNX Runtime: a session per execution provider and graph optimization level."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from exportcheck.comparison.runtimes.base import Runner, RunnerUnavailable, Runtime
from exportcheck.errors import MissingExternalDataError, UnreadableArtifactError
from exportcheck.numerics.metrics import to_numpy
from exportcheck.numerics.runtime_imports import onnxruntime

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


def check_onnx_external_data(path: str) -> None:
    """Before ORT reads anything: the reader's one walk refuses escaping locations and notes a
    missing side file, which a run cannot do without."""
    from exportcheck.readers.onnx import read_onnx

    for note in read_onnx(path, frozenset()).notes:
        if note.code == "missing-external-data":
            raise MissingExternalDataError(
                f"{note.message.split(';')[0]}: the model cannot run", subject=path
            )


def onnx_runner(
    path: str, device: str, optimization: str, *, serialized: bytes | None = None
) -> Runner:
    """A session on the device's provider. ORT is the reference runtime for ONNX: a file it
    cannot load is an unreadable input (exit 2), not a runtime's refusal. `serialized`: a
    model to run in place of the file's own bytes (a repaired form of it), never written; its
    external data is read from beside `path`."""
    ort = onnxruntime()
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
    if serialized is not None:
        options.add_session_config_entry(
            "session.model_external_initializers_file_folder_path",
            os.path.dirname(os.path.abspath(path)),
        )
    try:
        session = ort.InferenceSession(
            path if serialized is None else serialized, sess_options=options, providers=[provider]
        )
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


class OnnxRuntime(Runtime):
    name = "onnxruntime"
    title = "ONNX Runtime"
    package = "onnxruntime"
    extra = "validate"
    kinds = frozenset({"onnx"})

    def options(self, kind: str, device: str) -> Sequence[str | None]:
        return tuple(OPTIMIZATION_LEVELS)

    def load(self, path: str, kind: str, device: str, option: str | None, loaded: Any) -> Runner:
        return onnx_runner(path, device, option or "default")

    def describe(self) -> str:
        return f"{self.title} {onnxruntime().__version__}"

    def refuse(self, error: BaseException) -> str:
        return ort_message(error)

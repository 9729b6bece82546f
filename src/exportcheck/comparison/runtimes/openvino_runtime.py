"""OpenVINO: ONNX files read by its ONNX frontend and compiled for its CPU (and GPU, where
it has one)."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from exportcheck.comparison.runtimes.base import Runner, Runtime, RuntimeRefused
from exportcheck.numerics.metrics import to_numpy
from exportcheck.numerics.runtime_imports import openvino

# An item of the frontend's conversion report: a failed node, or a line of its summary.
_SUMMARY_ITEM = "-- "
# The lines of an OpenVINO error that say where in OpenVINO it was raised, not why.
_BOILERPLATE = (
    "Exception from ",
    "Check '",
    "FrontEnd API failed",
    "Model wasn't fully converted",
    _SUMMARY_ITEM,
    "Summary:",
)


# `(ONNX node '<Node(Dropout): /block/Dropout_output_0>')`: a value the node computes.
_NODE_IN_REFUSAL = re.compile(r"<Node\([^)]*\): ([^>]+)>")


@functools.lru_cache(maxsize=1)
def _core() -> Any:
    return openvino().Core()


class OpenVino(Runtime):
    name = "openvino"
    title = "OpenVINO"
    package = "openvino"
    extra = "openvino"
    kinds = frozenset({"onnx"})

    def options(self, kind: str, device: str) -> Sequence[str | None]:
        if device != "cpu":
            return ()  # OpenVINO's GPU plugin is Intel's: no CUDA device
        return ("CPU", *(["GPU"] if "GPU" in _core().available_devices else []))

    def load(self, path: str, kind: str, device: str, option: str | None, loaded: Any) -> Runner:
        core = _core()
        target = option or "CPU"
        try:
            # A CPU with bf16 units (and every GPU) infers in reduced precision by default:
            # f32 compares like for like with the float32 reference.
            compiled = core.compile_model(
                core.read_model(path), target, {"INFERENCE_PRECISION_HINT": "f32"}
            )
        except Exception as error:
            raise RuntimeRefused(self.refuse(error)) from None
        outputs = list(compiled.outputs)
        names = [", ".join(sorted(o.get_names())) or f"output_{i}" for i, o in enumerate(outputs)]

        def call(inputs: Sequence[Any]) -> list[np.ndarray]:
            try:
                results = compiled([to_numpy(x) for x in inputs])
            except Exception as error:
                raise RuntimeRefused(self.refuse(error)) from None
            return [np.asarray(results[o]) for o in outputs]

        return Runner(self.name, device, target, None, names, call)

    def describe(self) -> str:
        return f"{self.title} {openvino().__version__.split('-')[0]}"

    def refused_node(self, reason: str) -> str | None:
        found = _NODE_IN_REFUSAL.search(reason)
        return found.group(1).strip() if found else None

    def refuse(self, error: BaseException) -> str:
        """`Training mode is not supported for Dropout op (ONNX node <Node(Dropout): ...>)`:
        the frontend's reason, and the node it names. Without a reason of the frontend's own,
        its summary (`No conversion rule found for operations: Det-20`)."""
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        node = next((line for line in lines if line.startswith("While validating ONNX node")), "")
        reasons = [
            line
            for line in lines
            if not line.startswith(_BOILERPLATE) and not line.startswith("While validating")
        ]
        summary = [
            line.removeprefix(_SUMMARY_ITEM) for line in lines if line.startswith(_SUMMARY_ITEM)
        ]
        if reasons:
            reason = reasons[0]
        elif summary:
            reason = "; ".join(summary)
        else:
            reason = " ".join(" ".join(lines).split())
        if node:
            reason += f" ({node.removeprefix('While validating ').rstrip(':')})"
        return reason or type(error).__name__

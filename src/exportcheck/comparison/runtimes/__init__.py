"""The runtimes artifacts are run on: one module each behind the `Runtime` interface (load, run,
describe, refuse), listed in one tuple. Adding a runtime is its module and a line here; a
runtime of native code that an artifact could crash is listed `IsolatedRuntime(...)`, to run
in a process of its own."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from exportcheck.comparison.runtimes.base import (
    Runner,
    RunnerUnavailable,
    Runtime,
    RuntimeCrashed,
    RuntimeRefused,
)
from exportcheck.comparison.runtimes.host import IsolatedRuntime
from exportcheck.comparison.runtimes.onnx_runtime import (
    OPTIMIZATION_LEVELS,
    OnnxRuntime,
    check_onnx_external_data,
    onnx_runner,
    ort_message,
)
from exportcheck.comparison.runtimes.openvino_runtime import OpenVino
from exportcheck.comparison.runtimes.torch_runtime import TorchRuntime, pytorch_runner, torch_runner
from exportcheck.comparison.runtimes.tract_runtime import Tract

RUNTIMES: tuple[Runtime, ...] = (
    OnnxRuntime(),
    IsolatedRuntime(OpenVino()),
    IsolatedRuntime(Tract()),
    TorchRuntime(),
)

RUNTIME_NAMES: tuple[str, ...] = tuple(r.name for r in RUNTIMES)


def get_runtime(name: str) -> Runtime:
    """The runtime of this name; KeyError with the choices otherwise."""
    for runtime in RUNTIMES:
        if runtime.name == name:
            return runtime
    raise KeyError(f"unknown runtime {name!r} (choose from {', '.join(RUNTIME_NAMES)})")


def chosen_runtimes(names: Iterable[str] | None) -> tuple[Runtime, ...]:
    """The runtimes asked for, in registry order; None asks for every one."""
    if names is None:
        return RUNTIMES
    wanted = set(names)
    for name in wanted:
        get_runtime(name)
    return tuple(r for r in RUNTIMES if r.name in wanted)


def missing_runtimes(names: Sequence[str]) -> list[str]:
    """Why each runtime named here cannot run (not installed, with the extra to install)."""
    return [
        f"{runtime.name}: {runtime.install_hint()}"
        for runtime in chosen_runtimes(names)
        if not runtime.installed()
    ]


__all__ = [
    "OPTIMIZATION_LEVELS",
    "RUNTIMES",
    "RUNTIME_NAMES",
    "Runner",
    "RunnerUnavailable",
    "Runtime",
    "RuntimeCrashed",
    "RuntimeRefused",
    "check_onnx_external_data",
    "chosen_runtimes",
    "get_runtime",
    "missing_runtimes",
    "onnx_runner",
    "ort_message",
    "pytorch_runner",
    "torch_runner",
]

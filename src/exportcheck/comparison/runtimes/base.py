"""What every runtime implements (load, run, describe, refuse) and the runner it hands back."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np


class RunnerUnavailable(Exception):
    """A runtime, provider or device that is not there; the report says it was skipped."""


class RuntimeRefused(Exception):
    """The runtime would not load, compile or run the artifact; the message is its own reason,
    on one line."""


class RuntimeCrashed(RuntimeRefused):
    """The runtime's process died on the artifact (a segfault, an abort): the message says how,
    with its last words. exportcheck goes on; the runtime gets a fresh process."""


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


class Runtime:
    """One runtime an artifact can ship to. Subclasses name it and say how to load an artifact;
    nothing here imports the runtime's package until an artifact is loaded."""

    name: ClassVar[str]
    """The choice `--runtimes` and the config's `runtimes` take."""
    title: ClassVar[str]
    """How reports name it."""
    package: ClassVar[str]
    """The importable package it needs, found without importing it."""
    extra: ClassVar[str]
    """The exportcheck extra that installs it."""
    kinds: ClassVar[frozenset[str]]
    """The artifact kinds it runs: onnx, torchscript, exported-program."""

    def installed(self) -> bool:
        try:
            return importlib.util.find_spec(self.package) is not None
        except (ImportError, ValueError):  # ValueError: blocked in sys.modules (set to None)
            return False

    def install_hint(self) -> str:
        return f"{self.package} is not installed (pip install 'exportcheck[{self.extra}]')"

    def options(self, kind: str, device: str) -> Sequence[str | None]:
        """The configurations to run an artifact in on one exportcheck device (an
        optimization level, a runtime's own device); empty where the runtime has none."""
        return (None,) if device == "cpu" else ()

    def load(self, path: str, kind: str, device: str, option: str | None, loaded: Any) -> Runner:
        """A runner for the artifact; RunnerUnavailable when the device is not there,
        RuntimeRefused when the runtime will not take the artifact."""
        raise NotImplementedError

    def warm_up(self) -> None:
        """Starts what a first load would wait for (a runtime's own process and its import)
        while the model is still being exported; nothing for a runtime loaded in-process."""

    def prefetch(self, path: str, kind: str, devices: Sequence[str]) -> None:
        """Starts loading an artifact the static pass has cleared, for the `load` calls that
        follow; nothing for a runtime that loads only when asked."""

    def forget(self, path: str) -> None:
        """Drops whatever `prefetch` started for this artifact and nobody loaded."""

    def describe(self) -> str:
        """Its name and installed version."""
        raise NotImplementedError

    def refuse(self, error: BaseException) -> str:
        """The runtime's own error as one line: the reason, without its source locations."""
        return " ".join(str(error).split()) or type(error).__name__

    def refused_node(self, reason: str) -> str | None:
        """The node a refusal (as `refuse` wrote it) names, by the runtime's name for it; None
        where it names none."""
        return None

    def label(self, device: str, option: str | None) -> str:
        """`openvino cpu CPU`: the configuration as progress lines name it."""
        return " ".join(p for p in (self.name, device, option) if p)

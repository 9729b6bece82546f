"""tract (Sonos' Rust inference engine): ONNX files on the CPU."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from exportcheck.comparison.runtimes.base import Runner, Runtime, RuntimeRefused
from exportcheck.numerics.metrics import to_numpy


class Tract(Runtime):
    name = "tract"
    title = "tract"
    package = "tract"
    extra = "tract"
    kinds = frozenset({"onnx"})

    def load(self, path: str, kind: str, device: str, option: str | None, loaded: Any) -> Runner:
        """The model planned once with its symbolic dimensions. Binding them to the run's
        sizes instead (input facts, SetSymbols) clashes with the shapes the dynamo exporter
        stores for intermediate values, and does not get an LSTM's Scan through either."""
        import tract

        try:
            model = tract.onnx().load(path).into_model()
            names = [model.output_name(i) for i in range(model.output_count())]
            runnable = model.into_runnable()
        except Exception as error:
            raise RuntimeRefused(self.refuse(error)) from None

        def call(inputs: Sequence[Any]) -> list[np.ndarray]:
            try:
                results = runnable.run([np.ascontiguousarray(to_numpy(x)) for x in inputs])
            except Exception as error:
                raise RuntimeRefused(self.refuse(error)) from None
            return [np.asarray(v.to_numpy()) for v in results]

        return Runner(self.name, device, None, None, names, call)

    def describe(self) -> str:
        import tract

        return f"{self.title} {tract.version()}"

    def refuse(self, error: BaseException) -> str:
        """`Dropout in training mode with a non-zero ratio is not supported (evaluating #7
        "/block/Dropout" Dropout)`: the innermost cause first, then where, no Rust backtrace."""
        text = " ".join(str(error).split("Stack backtrace:")[0].split())
        where, _, cause = text.rpartition("Caused by:")
        where = where.split("Caused by:")[0].strip()
        cause = re.split(r"(?:^|\s)\d+: ", cause)[-1]  # the last of a numbered chain of causes
        if not where:
            return cause.strip() or type(error).__name__
        return f"{cause.strip()} ({where[0].lower()}{where[1:]})"

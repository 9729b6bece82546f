"""tract (Sonos' Rust inference engine): ONNX files on the CPU."""

from __future__ import annotations

import ctypes
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from exportcheck.comparison.runtimes.base import (
    Runner,
    RunnerUnavailable,
    Runtime,
    RuntimeRefused,
)
from exportcheck.numerics.metrics import to_numpy

# tract's loader option behind its CLI's `--onnx-ignore-value-info` and Rust's
# `with_ignore_value_info(true)`: the dynamo exporter stores symbolic shapes for intermediate
# values, and tract refuses to unify them with the sizes it plans for ("Impossible to unify
# Sym(s77) with Val(3)"). The shapes are annotations; tract infers its own from the inputs.
LOADER_OPTIONS = b'{"ignore_value_info": true}'
MINIMUM_VERSION = "0.23.6"  # the first whose library loads with options; pyproject pins it
# `(translating node #788 "node_BatchNorm_45" BatchNorm ToTypedTranslator)`: the ONNX node's name.
_NODE_IN_REFUSAL = re.compile(r'#\d+ "([^"]+)"')


def _loader() -> Any:
    """tract's C entry point that loads with options. The Python package does not wrap it;
    its library has it from tract 0.23.6 on. An older tract is unavailable, not refusing."""
    import tract
    from tract.bindings import lib

    load_with_options = getattr(lib, "tract_onnx_load_with_options", None)
    if load_with_options is None:
        raise RunnerUnavailable(
            f"tract {tract.version()} is older than exportcheck supports ({MINIMUM_VERSION}): "
            f"pip install 'tract>={MINIMUM_VERSION}'"
        )
    return load_with_options


def _read(path: str, load_with_options: Any) -> Any:
    """The file as a tract InferenceModel, loaded as tract's users load exports."""
    import tract
    from tract.bindings import check
    from tract.inference_model import InferenceModel

    onnx = tract.onnx()
    model = ctypes.c_void_p()
    check(load_with_options(onnx.ptr, os.fsencode(path), LOADER_OPTIONS, ctypes.byref(model)))
    return InferenceModel(model)


def input_fact(array: np.ndarray) -> str:
    """`3,7,12,f32`: an input's shape and element type as tract's facts are written."""
    dtype = array.dtype
    element = "bool" if dtype.kind == "b" else f"{dtype.kind}{dtype.itemsize * 8}"
    return ",".join([*(str(size) for size in array.shape), element])


class Tract(Runtime):
    name = "tract"
    title = "tract"
    package = "tract"
    extra = "tract"
    kinds = frozenset({"onnx"})

    def load(self, path: str, kind: str, device: str, option: str | None, loaded: Any) -> Runner:
        """A runner that plans the model once per input shape, with every input's size and
        type given, as tract's documentation loads a model (`set_input_fact`, then
        `into_model`). Planned with symbolic sizes, tract binds an LSTM's Scan to batch 1 and
        refuses any other ("Clashing resolution for expression. batch=3 != 1"); planned per
        shape, the same file runs at every batch size."""
        load_with_options = _loader()
        try:
            parsed = _read(path, load_with_options)
            names = [parsed.output_name(i) for i in range(parsed.output_count())]
        except Exception as error:
            raise RuntimeRefused(self.refuse(error)) from None
        unplanned = [parsed]
        plans: dict[tuple[str, ...], Any] = {}

        def plan(arrays: Sequence[np.ndarray]) -> Any:
            facts = tuple(input_fact(array) for array in arrays)
            if facts not in plans:
                model = unplanned.pop() if unplanned else _read(path, load_with_options)
                for position, fact in enumerate(facts):
                    model.set_input_fact(position, fact)
                plans[facts] = model.into_model().into_runnable()
            return plans[facts]

        def call(inputs: Sequence[Any]) -> list[np.ndarray]:
            arrays = [np.ascontiguousarray(to_numpy(x)) for x in inputs]
            try:
                results = plan(arrays).run(arrays)
            except Exception as error:
                raise RuntimeRefused(self.refuse(error)) from None
            return [np.asarray(v.to_numpy()) for v in results]

        return Runner(self.name, device, None, None, names, call)

    def describe(self) -> str:
        import tract

        return f"{self.title} {tract.version()}"

    def refused_node(self, reason: str) -> str | None:
        found = _NODE_IN_REFUSAL.search(reason)
        return found.group(1) if found else None

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

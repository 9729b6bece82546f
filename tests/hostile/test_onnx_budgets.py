"""Hostile ONNX files against the reader's budgets: work per opset import, tensor dims whose
product explodes, fields the rules read given with the wrong type, absurd stack-trace lines.

Each is a real export (the train-mode CNN of conftest, legacy or dynamo exporter) with protobuf
fields edited where the exporter cannot produce the case. Every worst case runs `exportcheck
inspect` in a process of its own: under 10 s and 500 MB, exit 0, 1 or 2, never 3.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from onnx import ModelProto, TensorProto, helper

from exportcheck.graph_checks import inspect_artifact
from tests.hostile.conftest import assert_bounded
from tests.hostile.test_fuzz import _break_utf8, _ops

STACK_TRACE = "pkg.torch.onnx.stack_trace"
LINE = "9" * 5000


@dataclass(frozen=True)
class Hostile:
    """One hostile model: the seed it starts from, the edit, and the cause an input error
    names (None: the file is read)."""

    name: str
    seed: str
    edit: Callable[[ModelProto], None]
    cause: str | None = None
    serialized: Callable[[bytes], bytes] = bytes  # a last edit of the bytes


def many_opset_imports(domain: str | None, newest: int | None = None) -> Callable:
    def edit(model: ModelProto) -> None:
        for position in range(100_000):
            model.opset_import.add(domain=domain or f"custom.{position}", version=17)
        if newest is not None:
            model.opset_import.add(domain="ai.onnx", version=newest)

    return edit


def functions_times_opsets(model: ModelProto) -> None:
    """2,000 functions and 100,000 opset domains: copying the domains into each function's
    table would be 2 * 10**8 entries."""
    many_opset_imports(None)(model)
    for position in range(2_000):
        function = model.functions.add(name=f"f{position}", domain="local")
        function.opset_import.add(domain="", version=17)
        function.node.append(helper.make_node("Dropout", ["x"], ["y"], training_mode=1))


def dropout_input(position: int, tensor: TensorProto) -> Callable:
    def edit(model: ModelProto) -> None:
        for node in _ops(model.graph, "Dropout"):
            name = f"hostile_{position}_{node.name}"
            model.graph.initializer.append(_named(tensor, name))
            while len(node.input) <= position:
                node.input.append("")
            node.input[position] = name

    return edit


def _named(tensor: TensorProto, name: str) -> TensorProto:
    copy = TensorProto()
    copy.CopyFrom(tensor)
    copy.name = name
    return copy


def ratio_attribute(model: ModelProto) -> None:
    """Dropout-10's `ratio` attribute, as a string, with the ratio input removed."""
    for node in _ops(model.graph, "Dropout"):
        del node.input[1:]
        node.attribute.append(helper.make_attribute("ratio", b"0.5"))


def stack_traces(trace: str | bytes) -> Callable:
    def edit(model: ModelProto) -> None:
        for node in model.graph.node:
            for prop in list(node.metadata_props):
                if prop.key == STACK_TRACE:
                    node.metadata_props.remove(prop)
            node.metadata_props.add(key=STACK_TRACE, value=trace)

    return edit


def huge_dims(count: int, dim: int, data_type: int = TensorProto.FLOAT) -> TensorProto:
    tensor = TensorProto(data_type=data_type, dims=[dim] * count)
    tensor.raw_data = b"\0" * 4
    return tensor


OPSET_CASES = [
    Hostile("default-opset-100000-times", "legacy", many_opset_imports("")),
    Hostile("custom-opsets-100000", "dynamo", many_opset_imports(None)),
    Hostile(
        "ai-onnx-opsets-then-one-too-new",
        "legacy",
        many_opset_imports("ai.onnx", newest=999),
        "opset 999 is newer than the installed onnx",
    ),
    Hostile("functions-times-opsets", "legacy", functions_times_opsets),
]

DIMS_CASES = [
    Hostile("ratio-dims-2e62-times-100000", "legacy", dropout_input(1, huge_dims(100_000, 2**62))),
    Hostile("mode-dims-1e18-times-50", "legacy", dropout_input(2, huge_dims(50, 10**18))),
]

FIELD_CASES = [
    Hostile(
        "ratio-a-string-initializer",
        "legacy",
        dropout_input(1, helper.make_tensor("r", TensorProto.STRING, [], [b"0.5"])),
    ),
    Hostile(
        "mode-a-string-initializer",
        "legacy",
        dropout_input(2, helper.make_tensor("m", TensorProto.STRING, [], [b""])),
    ),
    Hostile("ratio-a-string-attribute", "legacy", ratio_attribute),
    Hostile(
        "mode-a-nan-double",
        "dynamo",
        dropout_input(2, helper.make_tensor("m", TensorProto.DOUBLE, [], [float("nan")])),
    ),
]

LINE_CASES = [
    Hostile(
        "stack-trace-line-of-5000-digits",
        "dynamo",
        stack_traces(f'File "/user/model.py", line {LINE}, in forward\n    x\n'),
    ),
    Hostile(
        "stack-trace-not-utf8-with-huge-line",
        "legacy",
        stack_traces(f'File "/user/NOTUTF8.py", line {LINE}, in f\n'),
        # protobuf refuses to set a string that is not UTF-8: the bytes are broken afterwards.
        serialized=lambda data: _break_utf8(data, b"NOTUTF8", 0),
    ),
    Hostile(
        "stack-trace-2000-frames-of-huge-lines",
        "dynamo",
        stack_traces(f'  File "/user/model.py", line {LINE}, in f\n' * 2000),
    ),
]

CASES = OPSET_CASES + DIMS_CASES + FIELD_CASES + LINE_CASES


def build(case: Hostile, seeds: dict[str, bytes], folder: Path) -> Path:
    model = ModelProto()
    model.ParseFromString(seeds[case.seed])
    case.edit(model)
    path = folder / f"{case.name}.onnx"
    path.write_bytes(case.serialized(model.SerializeToString()))
    return path


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cli_ends_within_budget(case: Hostile, exported_onnx, tmp_path: Path) -> None:
    measured = assert_bounded(build(case, exported_onnx, tmp_path), case.cause)
    if case.cause is None:
        assert measured.exit_code in (0, 1), measured.stderr


@pytest.mark.parametrize("case", FIELD_CASES, ids=lambda c: c.name)
def test_wrong_types_are_read_not_crashed_on(case: Hostile, exported_onnx, tmp_path: Path) -> None:
    """A ratio or mode of the wrong type is still read: the Dropout is reported (its mode is
    constant true or unreadable), nothing raises."""
    findings = inspect_artifact(build(case, exported_onnx, tmp_path))
    assert {"training-dropout", "dynamic-dropout-mode", "noop-dropout"} & {f.rule for f in findings}


@pytest.mark.parametrize("case", LINE_CASES, ids=lambda c: c.name)
def test_absurd_line_numbers_drop_the_location(case: Hostile, exported_onnx, tmp_path) -> None:
    findings = inspect_artifact(build(case, exported_onnx, tmp_path))
    assert "training-dropout" in {f.rule for f in findings}
    assert all(f.location.source_line is None for f in findings)


def test_a_real_line_number_is_kept(exported_onnx, tmp_path: Path) -> None:
    trace = 'File "/user/model.py", line 123456789, in forward\n    x\n'
    case = Hostile("line", "dynamo", stack_traces(trace))
    findings = inspect_artifact(build(case, exported_onnx, tmp_path))
    lines = {f.location.source_line for f in findings if f.rule == "training-dropout"}
    assert lines == {123456789}

"""Models whose artifacts really compute something else than eager PyTorch, each made by a real
exporter (no hand-edited graph), with the module and line where the divergence starts marked
`# diverges here`."""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

MARK = "# diverges here"


def marked_line(marker: str) -> int:
    """The line of this file whose statement carries `# diverges here: <marker>`."""
    for number, line in enumerate(Path(__file__).read_text().splitlines(), start=1):
        if line.rstrip().endswith(f"{MARK}: {marker}") and not line.lstrip().startswith("#"):
            return number
    raise LookupError(marker)


class SignedZeroAngle(nn.Module):
    """atan2 at a negative zero: eager gives +-pi, the dynamo exporter's Atan/Where lowering 0."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        return torch.atan2(y, -torch.relu(y) * 0)  # diverges here: angle


class FloorOfNegatives(nn.Module):
    """Integer floor division of negatives: the legacy exporter's lowering truncates some."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        codes = (self.fc(x) * 7).to(torch.int64)
        return torch.floor_divide(codes, -4).float()  # diverges here: floor


class IntegerClamp(nn.Module):
    """An int64 tensor clamped at a float bound: eager promotes to float, the legacy exporter
    casts the bound to the integer type."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        codes = (self.fc(x) * 7).to(torch.int64)
        return codes.clamp(min=-2.5).float() * 1.0  # diverges here: clamp


@torch.library.custom_op("exportcheck_tests::scaled_tanh", mutates_args=())
def scaled_tanh(x: torch.Tensor) -> torch.Tensor:
    return torch.tanh(x) * 3.0


@scaled_tanh.register_fake
def _(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


class CustomActivation(nn.Module):
    """A custom op; its ONNX lowering, registered through torch.onnx's public API, forgets the
    scale."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return scaled_tanh(self.fc(x))  # diverges here: custom


class Net(nn.Module):
    """A stem, the block under test, and a head that carries its error downstream."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.stem = nn.Linear(8, 8)
        self.block = block
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(torch.relu(self.stem(x))))


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        warnings.simplefilter("ignore")
        yield


def export_dynamo(model: nn.Module, inputs: tuple, path: str, table: dict | None = None) -> None:
    with quiet():
        program = torch.onnx.export(
            model, inputs, dynamo=True, verbose=False, custom_translation_table=table
        )
        program.save(path)


def export_legacy(model: nn.Module, inputs: tuple, path: str) -> None:
    with quiet():
        torch.onnx.export(model, inputs, path, dynamo=False)


def _wrong_scaled_tanh_translation() -> dict:
    from onnxscript import opset18 as op

    def scaled_tanh_without_scale(x):
        return op.Tanh(x)

    return {torch.ops.exportcheck_tests.scaled_tanh.default: scaled_tanh_without_scale}


def _wrong_scaled_tanh_symbolic() -> None:
    def symbolic(g, x):
        return g.op("Tanh", x)

    torch.onnx.register_custom_op_symbolic("exportcheck_tests::scaled_tanh", symbolic, 9)


@dataclass(frozen=True)
class Case:
    """A model, how its artifact is made, and what localization must name."""

    name: str
    block: Callable[[], nn.Module]
    export: Callable[[nn.Module, tuple, str], None]
    marker: str
    op_type: str
    how: str

    def build(self) -> tuple[nn.Module, tuple[torch.Tensor]]:
        torch.manual_seed(0)
        return Net(self.block()).eval(), (torch.randn(4, 8),)


def _dynamo_with_wrong_translation(model: nn.Module, inputs: tuple, path: str) -> None:
    export_dynamo(model, inputs, path, _wrong_scaled_tanh_translation())


def _legacy_with_wrong_symbolic(model: nn.Module, inputs: tuple, path: str) -> None:
    _wrong_scaled_tanh_symbolic()
    export_legacy(model, inputs, path)


CASES = (
    Case(
        "signed-zero-atan2",
        SignedZeroAngle,
        export_dynamo,
        "angle",
        "Atan",
        "torch.onnx.export(dynamo=True): atan2(y, -0.0) lowered to Div/Atan/Where",
    ),
    Case(
        "floor-divide-negative-ints",
        FloorOfNegatives,
        export_legacy,
        "floor",
        "Div",
        "torch.onnx.export(dynamo=False): int64 floor_divide of negatives",
    ),
    Case(
        "int-clamp-float-bound",
        IntegerClamp,
        export_legacy,
        "clamp",
        "Clip",
        "torch.onnx.export(dynamo=False): int64.clamp(min=-2.5), dtype promotion",
    ),
    Case(
        "custom-translation-wrong",
        CustomActivation,
        _dynamo_with_wrong_translation,
        "custom",
        "Tanh",
        "torch.onnx.export(dynamo=True, custom_translation_table=...) lowering a custom op "
        "without its scale",
    ),
    Case(
        "custom-symbolic-wrong",
        CustomActivation,
        _legacy_with_wrong_symbolic,
        "custom",
        "Tanh",
        "torch.onnx.register_custom_op_symbolic lowering a custom op without its scale, "
        "legacy exporter",
    ),
)

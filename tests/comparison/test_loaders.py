"""Loading an exported program: the same program torch.export.load gives, with the schema's type
hints resolved once per load, one load at a time (torch's deserializer is a module global), and
torch's deserializer left as it was afterwards."""

from __future__ import annotations

import threading
import typing

import torch
from torch import nn
from torch._export.serde import schema, serialize

from exportcheck.comparison.loaders import _SchemaTyping, load_exported_program


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.bn(self.conv(x)).relu().mean((2, 3)))


def _saved_program(tmp_path) -> str:
    path = str(tmp_path / "block.pt2")
    torch.export.save(torch.export.export(Block().eval(), (torch.randn(2, 3, 8, 8),)), path)
    return path


def test_the_loaded_program_is_the_one_torch_loads(tmp_path):
    path = _saved_program(tmp_path)
    ours, torchs = load_exported_program(path), torch.export.load(path)
    assert ours.graph_module.code == torchs.graph_module.code
    assert str(ours.graph_signature) == str(torchs.graph_signature)
    assert ours.range_constraints.keys() == torchs.range_constraints.keys()
    assert all(torch.equal(v, torchs.state_dict[k]) for k, v in ours.state_dict.items())
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(ours.module()(x), torchs.module()(x))
    assert serialize.typing is typing


def test_schema_type_hints_are_resolved_once_and_other_lookups_go_to_typing():
    seen = _SchemaTyping(vars(schema))
    first = seen.get_type_hints(schema.TensorMeta, globalns=vars(schema))
    assert first == typing.get_type_hints(schema.TensorMeta, globalns=vars(schema))
    first.clear()  # a caller's change stays with the caller
    assert seen.get_type_hints(schema.TensorMeta, globalns=vars(schema))
    assert list(seen.resolved) == [schema.TensorMeta]
    assert seen.get_type_hints(Block.forward) == typing.get_type_hints(Block.forward)
    assert list(seen.resolved) == [schema.TensorMeta]
    assert seen.Annotated is typing.Annotated


def test_loads_on_two_threads_both_succeed_and_leave_the_deserializer_as_it_was(tmp_path):
    path = _saved_program(tmp_path)
    errors: list[BaseException] = []

    def load() -> None:
        try:
            for _ in range(3):
                load_exported_program(path)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert serialize.typing is typing

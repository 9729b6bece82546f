"""The restricted unpickler on the opcode patterns TorchScript archives use."""

from __future__ import annotations

import enum
import zipfile

import pytest
import torch

from exportcheck.readers.restricted_pickle import Record, restricted_load

# TorchScript pickles an enum attribute as `GLOBAL Enum; 'NAME'; REDUCE`: the argument is a bare
# string, which the C unpickler refuses ("argument list must be a tuple").
_ENUM_ATTRIBUTE = b"\x80\x02c__torch__.layers\nFormat\nX\x04\x00\x00\x00NCHWR."


def test_an_enum_attribute_reads_as_a_record():
    loaded = restricted_load(_ENUM_ATTRIBUTE)
    assert isinstance(loaded.value, Record)
    assert loaded.value.qualified_name == "__torch__.layers.Format"
    assert loaded.value._pickle_args == ("NCHW",)
    assert loaded.unsafe_globals == ()


def test_the_enum_fallback_still_reports_foreign_globals():
    data = b"\x80\x02(cos\nsystem\nX\x02\x00\x00\x00lstc__torch__.l\nE\nX\x01\x00\x00\x00AR."
    loaded = restricted_load(data)
    assert loaded.unsafe_globals == ("os.system",)


class Format(enum.Enum):
    NCHW = "NCHW"
    NHWC = "NHWC"


class WithFormat(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fmt = Format.NCHW

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fmt == Format.NHWC:
            return x.permute(0, 2, 3, 1)
        return x


def test_a_scripted_module_with_an_enum_attribute(tmp_path):
    path = tmp_path / "m.pt"
    torch.jit.script(WithFormat().eval()).save(str(path))
    with zipfile.ZipFile(path) as archive:
        data = archive.read(next(n for n in archive.namelist() if n.endswith("/data.pkl")))
    loaded = restricted_load(data)
    assert loaded.unsafe_globals == ()
    assert isinstance(loaded.value.attributes["fmt"], Record)
    assert loaded.value.attributes["fmt"]._pickle_args == ("NCHW",)


@pytest.mark.parametrize(
    ("data", "cause"),
    [
        # A BYTEARRAY8 longer than the data left: CPython's C unpickler leaks a buffer export
        # on it and prints a SystemError on stderr (found by the TorchScript soak fuzz).
        (b"\x80\x02\x96" + (1000).to_bytes(8, "little") + b"abc.", "bytearray8"),
        (b"\x80\x05\x96" + (3).to_bytes(8, "little") + b"abc\x98.", "protocol 5"),
        (b"\x80\x05\x97.", "protocol 5"),
    ],
    ids=["truncated-bytearray8", "readonly-buffer", "next-buffer"],
)
def test_protocol_5_buffers_are_refused_before_the_unpickler_runs(data, cause, capfd):
    with pytest.raises(ValueError, match="not a readable pickle") as raised:
        restricted_load(data)
    assert cause in str(raised.value)
    assert capfd.readouterr().err == ""

"""The ONNX reader's own tensor decoder gives the values onnx.numpy_helper gives."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from exportcheck.readers.onnx.constants import decode_tensor, tensor_arg

PLAIN_DTYPES = [
    np.float32,
    np.float64,
    np.float16,
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
    np.bool_,
]
SHAPES = [(), (1,), (1, 1), (3,), (2, 3)]


def values(dtype: type, shape: tuple[int, ...]) -> np.ndarray:
    count = int(np.prod(shape, dtype=np.int64))
    if dtype is np.bool_:
        return (np.arange(count) % 2 == 0).reshape(shape)
    return (np.arange(count) * 3 + 1).astype(dtype).reshape(shape) / (
        4 if np.issubdtype(dtype, np.floating) else 1
    )


def typed_field_tensor(array: np.ndarray) -> TensorProto:
    """The same values in the typed field (float_data, int32_data...) instead of raw_data."""
    elem = helper.np_dtype_to_tensor_dtype(array.dtype)
    if array.dtype == np.float16:
        tensor = helper.make_tensor("t", elem, array.shape, array.view(np.uint16).flatten())
        return tensor
    return helper.make_tensor("t", elem, array.shape, array.flatten().tolist())


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", PLAIN_DTYPES)
@pytest.mark.parametrize("storage", ["raw_data", "typed field"])
def test_decoded_value_matches_numpy_helper(dtype: type, shape: tuple, storage: str) -> None:
    array = values(dtype, shape).astype(dtype)
    if storage == "raw_data":
        tensor = numpy_helper.from_array(array, "t")
        assert tensor.raw_data
    else:
        tensor = typed_field_tensor(array)
        assert not tensor.raw_data
    expected = numpy_helper.to_array(tensor)
    decoded = decode_tensor(tensor)
    if expected.size == 1:
        assert type(decoded) in (bool, int, float)  # a scalar needs no numpy
        assert decoded == expected.item()
    else:
        assert isinstance(decoded, np.ndarray)
        assert decoded.dtype == expected.dtype and decoded.shape == expected.shape
        assert np.array_equal(decoded, expected)


def test_rarer_element_types_go_through_numpy_helper() -> None:
    tensor = helper.make_tensor("t", TensorProto.BFLOAT16, (), [0.5])
    assert float(decode_tensor(tensor)) == float(numpy_helper.to_array(tensor))


@pytest.mark.parametrize(
    ("edit", "cause"),
    [
        (
            lambda t: setattr(t, "raw_data", b"\x00\x00"),
            "raw_data holds 2 bytes for 1 elements of float32",
        ),
        (lambda t: t.dims.append(-1), "negative dimension -1"),
    ],
)
def test_damaged_tensor_is_an_unreadable_argument(edit, cause: str) -> None:
    tensor = numpy_helper.from_array(np.array(0.5, dtype=np.float32), "t")
    edit(tensor)
    arg = tensor_arg(tensor, "initializer 't'")
    assert not arg.constant
    assert arg.source == f"initializer 't', an unreadable tensor ({cause})"


def test_typed_field_with_too_few_values_is_an_unreadable_argument() -> None:
    tensor = helper.make_tensor("t", TensorProto.FLOAT, (2,), [1.0, 2.0])
    tensor.dims[0] = 3
    arg = tensor_arg(tensor, "Constant 'k'")
    assert (
        arg.source
        == "Constant 'k', an unreadable tensor (float_data holds 2 values for 3 elements)"
    )

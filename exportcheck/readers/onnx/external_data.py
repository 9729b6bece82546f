"""Where a tensor's external data lives, and the refusal of locations outside the model's folder."""

from __future__ import annotations

import os

from exportcheck.errors import UnsafeExternalDataError
from exportcheck.readers.onnx.protos import TensorProto, text


def external_data_location(tensor: TensorProto) -> str | None:
    for entry in tensor.external_data:
        if text(entry.key) == "location":
            return text(entry.value)
    return None


def check_external_location(path: str, location: str, tensor_name: str) -> str:
    """Returns the side file's absolute path, or refuses a location outside the model's folder."""
    base = os.path.dirname(os.path.abspath(path))
    if not location or "\0" in location:
        raise UnsafeExternalDataError(
            f"external data of tensor {tensor_name!r} has no usable location ({location!r}); "
            "refused",
            subject=path,
        )
    if (
        os.path.isabs(location)
        or location.startswith(("/", "\\"))
        or (len(location) > 1 and location[1] == ":")
    ):
        raise UnsafeExternalDataError(
            f"external data of tensor {tensor_name!r} has absolute location {location!r}; "
            "refused (it must be relative to the model's folder)",
            subject=path,
        )
    resolved = os.path.realpath(os.path.join(base, location))
    if os.path.commonpath([resolved, os.path.realpath(base)]) != os.path.realpath(base):
        raise UnsafeExternalDataError(
            f"external data of tensor {tensor_name!r} points outside the model's folder "
            f"({location!r}); refused",
            subject=path,
        )
    return resolved

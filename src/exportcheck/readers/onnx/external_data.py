"""Where a tensor's external data lives, and the refusal of locations outside the model's folder."""

from __future__ import annotations

import os
from typing import Any

from exportcheck.errors import UnsafeExternalDataError
from exportcheck.readers.onnx.protos import (
    EXTERNAL,
    GRAPH,
    GRAPHS,
    SPARSE_TYPES,
    TENSOR,
    TENSORS,
    ModelProto,
    TensorProto,
    text,
)


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


def external_data_files(path: str, model: ModelProto | None = None) -> list[str]:
    """Every side file an ONNX model names for its external data, from any graph, subgraph,
    function or tensor attribute, joined to the model's folder (the graph is parsed unless the
    caller has, as `model`; no weight is read, no location is judged: reading the model refuses
    the unsafe ones)."""
    from exportcheck.readers.onnx.load import load_model

    model = load_model(path) if model is None else model
    tensors: list[TensorProto] = []
    graphs = [model.graph]
    for function in model.functions:
        _add_attribute_contents(function.node, tensors, graphs)
    while graphs:
        graph = graphs.pop()
        tensors += graph.initializer
        for sparse in graph.sparse_initializer:
            tensors += (sparse.values, sparse.indices)
        _add_attribute_contents(graph.node, tensors, graphs)
    folder = os.path.dirname(os.path.abspath(path))
    locations = {
        external_data_location(tensor) for tensor in tensors if tensor.data_location == EXTERNAL
    }
    return sorted(os.path.join(folder, location) for location in locations if location)


def _add_attribute_contents(nodes: Any, tensors: list[TensorProto], graphs: list[Any]) -> None:
    for node in nodes:
        for attr in node.attribute:
            kind = attr.type
            if kind == TENSOR:
                tensors.append(attr.t)
            elif kind == TENSORS:
                tensors += attr.tensors
            elif kind in SPARSE_TYPES:
                for sparse in (attr.sparse_tensor, *attr.sparse_tensors):
                    tensors += (sparse.values, sparse.indices)
            elif kind == GRAPH:
                graphs.append(attr.g)
            elif kind == GRAPHS:
                graphs += attr.graphs

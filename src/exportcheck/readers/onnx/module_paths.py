"""The PyTorch module and source line an ONNX node came from, from what the exporters recorded
on it."""

from __future__ import annotations

import ast

from exportcheck.readers.onnx.protos import NodeProto, text
from exportcheck.readers.source_frames import last_user_frame


def module_path_of(node: NodeProto, node_name: str) -> str | None:
    """The PyTorch module a node came from, as the dynamo or the legacy exporter recorded it
    (`node_name` is the node's name as text, which the caller has already read)."""
    name_scopes = namespace = None
    for prop in node.metadata_props:
        key = prop.key
        if key == "pkg.torch.onnx.name_scopes" and name_scopes is None:
            name_scopes = prop.value
        elif key == "namespace" and namespace is None:
            namespace = prop.value
    if name_scopes is not None:
        try:
            scopes = ast.literal_eval(text(name_scopes))
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            scopes = None
        # Metadata is free text: anything but a list of names is ignored, not trusted.
        if isinstance(scopes, (list, tuple)) and all(isinstance(s, str) for s in scopes):
            modules = [s for s in scopes[:-1] if s]
            return modules[-1] if modules else None
    if namespace is not None:
        names = [part.split(":", 1)[0].strip() for part in text(namespace).split("/")]
        modules = [n for n in names[1:-1] if n]
        return modules[-1] if modules else None
    if node_name.startswith("/"):
        return scoped_module(node_name) or None
    return None


def scoped_module(node_name: str) -> str:
    """The module path of a legacy exporter's node name: `/layer1/layer1.0/conv1/Conv` is
    `layer1.0.conv1` (a segment is either the full path or the attribute under its parent)."""
    path = ""
    for segment in node_name.strip("/").split("/")[:-1]:
        if path and not segment.startswith(path + "."):
            path = f"{path}.{segment}"
        else:
            path = segment
    return path


_STACK_TRACE_KEY = "pkg.torch.onnx.stack_trace"


def source_of(node: NodeProto) -> tuple[str, int] | None:
    """The user's file and line that made a node: the innermost frame outside torch of the
    Python stack the dynamo exporter records (the legacy exporter records none)."""
    for prop in node.metadata_props:
        if prop.key == _STACK_TRACE_KEY:
            return last_user_frame(text(prop.value))
    return None

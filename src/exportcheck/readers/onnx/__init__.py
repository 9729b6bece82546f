"""The ONNX reader: a ModelProto's graphs and functions as the uniform view, weights never read.

Modules, in the order a read uses them: `protos` (the protobuf classes), `load` (parse and
check the file), `external_data` (side-file location safety), `constants` (constant values),
`scopes` (name resolution through nested graphs), `arguments` (a node's arguments by schema
name), `module_paths` (the PyTorch module a node came from), `nodes` (a node as the uniform
view, and the producer/consumer lookup of its scope), `walk` (the ArtifactView); `skeletons`
(a model's bytes parsed with only the fields a question needs), `op_types` (the main graph's
op types, a hint `exportcheck fix` gives its walk) and `named_nodes` (a node found by the name
a runtime's refusal gives it).
"""

from __future__ import annotations

from exportcheck.readers.onnx.external_data import check_external_location, external_data_location
from exportcheck.readers.onnx.load import load_model
from exportcheck.readers.onnx.named_nodes import named_node
from exportcheck.readers.onnx.walk import read_onnx

__all__ = [
    "check_external_location",
    "external_data_location",
    "load_model",
    "named_node",
    "read_onnx",
]

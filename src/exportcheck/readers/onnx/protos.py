"""The ONNX protobuf classes, loaded without running the onnx package, and the enum numbers.

Static inspection needs only the generated message classes. `import onnx` runs
onnx/__init__.py, which imports onnx.helper, numpy and ml_dtypes: about 0.11 s on a 2-core
machine (0.7 s with ml_dtypes 0.7.0), against 0.02 s for the generated module alone. So this
module loads the wheel's own generated module, `onnx/onnx_ml_pb2.py` (it imports only
google.protobuf), from the installed onnx's folder by file location, without executing
onnx/__init__.py.

Why the wheel's module and not classes generated at build time: they are the same classes the
installed onnx and onnxruntime read, from the same .proto, so they can never disagree with the
runtime about a field, and the project needs no protoc step. Protobuf keys message classes by
descriptor, so when the onnx package is imported later in the same process (validate exports
and runs models), `onnx.ModelProto` is this module's ModelProto. If onnx is already imported,
its module is used as it is.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from functools import cache
from types import ModuleType
from typing import Any

_GENERATED = ("onnx_ml_pb2.py", "onnx_pb2.py")  # ONNX_ML builds (every wheel), then plain ones


@cache
def onnx_package_folder() -> str | None:
    """The installed onnx package's folder, found without importing it (a search of sys.path,
    done once)."""
    spec = importlib.util.find_spec("onnx")
    locations = spec.submodule_search_locations if spec is not None else None
    return next(iter(locations), None) if locations else None


def _generated_module() -> ModuleType:
    loaded = sys.modules.get("onnx")
    if loaded is not None:
        return loaded.onnx_ml_pb2 if hasattr(loaded, "onnx_ml_pb2") else loaded.onnx_pb
    folder = onnx_package_folder()
    for file_name in _GENERATED if folder else ():
        location = os.path.join(folder, file_name)  # type: ignore[arg-type]
        if os.path.isfile(location):
            spec = importlib.util.spec_from_file_location(
                f"exportcheck.readers.onnx._{file_name[:-3]}", location
            )
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    from onnx import onnx_pb  # an unusual install: the package's own way

    return onnx_pb


_pb = _generated_module()
AttributeProto: Any = _pb.AttributeProto
FunctionProto: Any = _pb.FunctionProto
GraphProto: Any = _pb.GraphProto
ModelProto: Any = _pb.ModelProto
NodeProto: Any = _pb.NodeProto
TensorProto: Any = _pb.TensorProto
IR_VERSION = int(_pb.IR_VERSION)

DEFAULT_DOMAINS = ("", "ai.onnx")
# Plain ints: reading AttributeProto.GRAPH goes through protobuf's enum wrapper on every access.
GRAPH = int(AttributeProto.GRAPH)
GRAPHS = int(AttributeProto.GRAPHS)
SUBGRAPH_TYPES = (GRAPH, GRAPHS)
INT = int(AttributeProto.INT)
FLOAT = int(AttributeProto.FLOAT)
TENSOR = int(AttributeProto.TENSOR)
TENSORS = int(AttributeProto.TENSORS)
SPARSE_TYPES = (int(AttributeProto.SPARSE_TENSOR), int(AttributeProto.SPARSE_TENSORS))
ATTRIBUTE_TYPES = frozenset(int(v) for v in AttributeProto.AttributeType.values())
EXTERNAL = int(TensorProto.EXTERNAL)


def text(value: str | bytes) -> str:
    """A protobuf string field as text: protobuf hands back bytes where a file's is not UTF-8."""
    return value if isinstance(value, str) else value.decode("utf-8", "backslashreplace")


def texts(values: Any) -> tuple[str, ...]:
    raw = tuple(values)
    for value in raw:
        if type(value) is not str:
            return tuple(map(text, raw))
    return raw

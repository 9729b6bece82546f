"""Child-process workloads the benchmark times, one per invocation: `python probes.py KIND ...`.

Each kind imports only what it measures, so a fresh process gives its own wall time and
peak memory. Kinds that report phase timings write them as JSON to the path in BENCH_PHASES.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import tempfile
import time


def _walk(model, graph_type: int, graphs_type: int) -> int:
    """Visits every node and attribute of the main graph, its subgraphs and the functions."""
    stack = [model.graph, *model.functions]
    seen = 0
    while stack:
        graph = stack.pop()
        for node in graph.node:
            seen += len(node.op_type)
            for attr in node.attribute:
                seen += len(attr.name) + attr.type
                if attr.type == graph_type:
                    stack.append(attr.g)
                elif attr.type == graphs_type:
                    stack.extend(attr.graphs)
    return seen


def onnx_load_floor(path: str) -> int:
    """The old floor: `onnx.load` without weights (the whole onnx package imported), the walk."""
    import onnx

    model = onnx.load(path, load_external_data=False)
    return _walk(model, onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)


ARCHIVE_SUFFIXES = (".pt", ".pt2")
# What a parser of a TorchScript or torch.export archive must read: code, pickles, JSON; not
# the tensor data (data/0, data/weights/*), which exportcheck never reads either.
PARSED_MEMBER_SUFFIXES = (".py", ".pkl", ".json")


def archive_floor(path: str) -> int:
    """Reads every code, pickle and JSON member of a zip archive with zipfile; parses nothing."""
    import zipfile

    seen = 0
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.filename.endswith(PARSED_MEMBER_SUFFIXES):
                seen += len(archive.read(info))
    return seen


def protobuf_floor(*paths: str) -> int:
    """The real limit: the wheel's generated classes (loaded by location, onnx/__init__.py not
    run), ParseFromString on each file's bytes, and the same walk. Several paths: one process.
    A `.pt`/`.pt2` path gets `archive_floor`: the same bytes a parser reads, nothing done."""
    import importlib.util

    folder = importlib.util.find_spec("onnx").submodule_search_locations[0]
    spec = importlib.util.spec_from_file_location(
        "bench_onnx_ml_pb2", os.path.join(folder, "onnx_ml_pb2.py")
    )
    generated = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generated)
    graph_type = int(generated.AttributeProto.GRAPH)
    graphs_type = int(generated.AttributeProto.GRAPHS)
    seen = 0
    for path in paths:
        if path.endswith(ARCHIVE_SUFFIXES):
            seen += archive_floor(path)
            continue
        model = generated.ModelProto()
        with open(path, "rb") as handle:
            model.ParseFromString(handle.read())
        seen += _walk(model, graph_type, graphs_type)
    return seen


def jit_node_loop(path: str) -> int:
    """`torch.jit.load` and a loop over every node of every method's inlined graph."""
    import torch

    loaded = torch.jit.load(path, map_location="cpu")
    count = 0
    for name in loaded._c._method_names():
        graph = getattr(getattr(loaded, name), "inlined_graph", None)
        for node in graph.nodes() if graph is not None else ():
            count += len(node.kind()) > 0
    return count


def export_node_loop(path: str) -> int:
    """`torch.export.load` and a loop over every node of every FX graph module in it."""
    import torch

    program = torch.export.load(path)
    count = 0
    for module in program.graph_module.modules():
        if isinstance(module, torch.fx.GraphModule):
            for node in module.graph.nodes:
                count += node.op == "call_function"
    return count


def torch_loader_loop(path: str) -> int:
    """What a loader-based inspector must do at least: torch's loader, then every node."""
    return export_node_loop(path) if path.endswith(".pt2") else jit_node_loop(path)


def onnx_ir_walk(path: str) -> int:
    """onnx_ir's load (external data stays lazy) and a walk of every graph and function."""
    import onnx_ir

    model = onnx_ir.load(path)
    seen = 0
    scopes = [*model.graphs(), *model.functions.values()]
    for scope in scopes:
        for node in scope:
            seen += len(node.op_type) + len(node.attributes)
    return seen


def import_check(result_path: str, *argv: str) -> None:
    """Runs the exportcheck CLI in-process and records, at exit, which heavy modules it loaded."""
    import atexit

    def record() -> None:
        heavy = ("torch", "onnxruntime", "onnx", "onnx.helper", "ml_dtypes", "numpy", "onnxscript")
        with open(result_path, "w") as handle:
            json.dump({name: name in sys.modules for name in heavy}, handle)

    atexit.register(record)
    sys.argv = ["exportcheck", *argv]
    from exportcheck.cli.main import main

    main()


class Phases:
    """Wall time of named steps inside one child process."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._start = time.perf_counter()

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._start, 3)
        self._start = now

    def save(self) -> None:
        target = os.environ.get("BENCH_PHASES")
        if target:
            with open(target, "w") as handle:
                json.dump(self.seconds, handle)


def _eval_model(name: str):
    import models
    import torch

    torch.manual_seed(0)
    model, inputs = getattr(models, name)()
    return model.eval(), inputs


def validate_floor(name: str, folder: str) -> None:
    """The least work `validate` must do: four exports, two ORT sessions, five forwards."""
    phases = Phases()
    import onnxruntime as ort
    import torch

    from exportcheck.pipeline.scratch import artifact_bytes, memory_folder_for

    phases.mark("import")
    model, inputs = _eval_model(name)
    phases.mark("build model")
    # The files go where validate writes its own temporary artifacts: in memory when they fit.
    files = tempfile.TemporaryDirectory(dir=memory_folder_for(artifact_bytes(model, 2)) or folder)
    dynamo_path = os.path.join(files.name, f"{name}.onnx")
    # Exports run with grad enabled: under no_grad an eval-mode nn.TransformerEncoderLayer
    # takes its fused fast path, which the legacy exporter cannot convert.
    torch.onnx.export(model, inputs, dynamo_path, dynamo=True, verbose=False)
    phases.mark("onnx export (dynamo)")
    torch.onnx.export(model, inputs, os.path.join(files.name, f"{name}_legacy.onnx"), dynamo=False)
    phases.mark("onnx export (legacy)")
    torch.jit.trace(model, inputs, check_trace=False)
    phases.mark("jit.trace")
    torch.export.export(model, inputs)
    phases.mark("torch.export")
    with torch.no_grad():
        for _ in range(3):
            model(*inputs)
    phases.mark("3 reference forwards")
    levels = {
        "no opt": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "default": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,  # SessionOptions' default
    }
    for label, level in levels.items():
        options = ort.SessionOptions()
        options.graph_optimization_level = level
        session = ort.InferenceSession(dynamo_path, options, providers=["CPUExecutionProvider"])
        names = [arg.name for arg in session.get_inputs()]
        session.run(None, {n: t.numpy() for n, t in zip(names, inputs)})
        phases.mark(f"ORT session + run ({label})")
    files.cleanup()
    phases.save()


def verify_anchor(name: str) -> None:
    """torch.onnx.verification.verify_onnx_program on a dynamo export, export included."""
    phases = Phases()
    import torch
    from torch.onnx.verification import verify_onnx_program

    phases.mark("import")
    model, inputs = _eval_model(name)
    phases.mark("build model")
    program = torch.onnx.export(model, inputs, dynamo=True, verbose=False)
    phases.mark("onnx export (dynamo)")
    verify_onnx_program(program, inputs)
    phases.mark("verify_onnx_program")
    phases.save()


KINDS = {
    "protobuf-floor": protobuf_floor,
    "onnx-load-floor": onnx_load_floor,
    "torch-loader-loop": torch_loader_loop,
    "onnx-ir": onnx_ir_walk,
    "imports": import_check,
    "validate-floor": validate_floor,
    "verify-anchor": verify_anchor,
}

if __name__ == "__main__":
    KINDS[sys.argv[1]](*sys.argv[2:])
    gc.freeze()

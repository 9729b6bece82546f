"""Synthetic inputs for the benchmark: large ONNX graphs, a model with ~2 GB of external data,
and folders of mixed `.onnx`/`.pt`/`.pt2` files."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
LOCAL_DOMAIN = "bench.local"
BLOCK_NODES = 50  # nodes one block adds, counting If bodies (function bodies are counted once)
CHEAP_OPS = ("Add", "Mul", "Relu", "Identity", "LeakyRelu")
FUNCTIONS = ("DropBlock", "ScaleBlock")
CHANNELS = 8
SHAPE = (1, CHANNELS, 4)  # every value of the generated graphs (elementwise ops keep it)
WEIGHT_SHAPE = (16384, 4096)  # float32: 256 MiB per initializer
WEIGHT_COUNT = 8  # 8 x 256 MiB = 2 GiB of external data
ALIGNMENT = 4096


@dataclass(frozen=True)
class Input:
    """One generated model file and what it holds."""

    label: str
    path: str
    nodes: int
    file_bytes: int
    external_bytes: int = 0


def _cheap(op: str, src: str, dst: str, *, name: str) -> onnx.NodeProto:
    if op in ("Add", "Mul"):
        return helper.make_node(op, [src, src], [dst], name=name)
    if op == "LeakyRelu":
        return helper.make_node(op, [src], [dst], name=name, alpha=0.01)
    return helper.make_node(op, [src], [dst], name=name)


def _if_node(src: str, dst: str, prefix: str) -> onnx.NodeProto:
    """An If whose two branches each hold two cheap nodes reading an outer-scope value."""
    out = helper.make_tensor_value_info
    then_graph = helper.make_graph(
        [
            helper.make_node("Relu", [src], [f"{dst}_t1"], name=f"{prefix}/then/Relu"),
            helper.make_node("Identity", [f"{dst}_t1"], [f"{dst}_t"], name=f"{prefix}/then/Id"),
        ],
        f"{prefix}_then",
        [],
        [out(f"{dst}_t", TensorProto.FLOAT, SHAPE)],
    )
    else_graph = helper.make_graph(
        [
            helper.make_node("Identity", [src], [f"{dst}_e1"], name=f"{prefix}/else/Id"),
            helper.make_node("Relu", [f"{dst}_e1"], [f"{dst}_e"], name=f"{prefix}/else/Relu"),
        ],
        f"{prefix}_else",
        [],
        [out(f"{dst}_e", TensorProto.FLOAT, SHAPE)],
    )
    return helper.make_node(
        "If",
        ["cond"],
        [dst],
        name=f"{prefix}/If",
        then_branch=then_graph,
        else_branch=else_graph,
    )


def _block(index: int, src: str) -> list[onnx.NodeProto]:
    """Fifty nodes: cheap chains, Dropout (mode true and false), BatchNorm, If, function calls.

    Each maker takes the previous value and the name of the value it must produce.
    """
    prefix = f"/layers.{index}"
    mode = "mode_true" if index % 2 == 0 else "mode_false"
    bn_inputs = ["bn_scale", "bn_bias", "bn_mean", "bn_var"]
    training = index % 10 == 9  # one BatchNorm in ten runs in training mode
    node = helper.make_node
    cheap = [CHEAP_OPS[i % len(CHEAP_OPS)] for i in range(40)]
    makers: list[Callable[[str, str], onnx.NodeProto]] = [
        partial(_cheap, op, name=f"{prefix}/{op}_{i}") for i, op in enumerate(cheap)
    ]
    makers += [
        lambda s, d: node("Dropout", [s, "ratio", mode], [d], name=f"{prefix}/drop/Dropout"),
        lambda s, d: node("Dropout", [s, "ratio", "mode_false"], [d], name=f"{prefix}/d2/Dropout"),
        lambda s, d: node(
            "BatchNormalization",
            [s, *bn_inputs],
            [d, f"{d}_mean", f"{d}_var"] if training else [d],
            name=f"{prefix}/bn/BatchNormalization",
            epsilon=1e-5,
            momentum=0.9,
            training_mode=int(training),
        ),
        lambda s, d: _if_node(s, d, f"{prefix}/branch"),
    ]
    makers += [
        lambda s, d, f=function: node(f, [s], [d], name=f"{prefix}/{f}", domain=LOCAL_DOMAIN)
        for function in FUNCTIONS
    ]
    nodes = []
    for step, make in enumerate(makers):
        dst = f"b{index}_{step}"
        nodes.append(make(src, dst))
        src = dst
    return nodes


def _functions() -> list[onnx.FunctionProto]:
    """Two model-local functions; DropBlock's Dropout takes its mode from a Constant."""
    drop = helper.make_function(
        LOCAL_DOMAIN,
        "DropBlock",
        ["x"],
        ["y"],
        [
            helper.make_node(
                "Constant", [], ["t"], value=helper.make_tensor("t", TensorProto.BOOL, [], [True])
            ),
            helper.make_node("Dropout", ["x", "", "t"], ["d"]),
            helper.make_node("Relu", ["d"], ["y"]),
        ],
        [helper.make_opsetid("", OPSET)],
    )
    scale = helper.make_function(
        LOCAL_DOMAIN,
        "ScaleBlock",
        ["x"],
        ["y"],
        [
            helper.make_node("Mul", ["x", "x"], ["m"]),
            helper.make_node("Add", ["m", "x"], ["a"]),
            helper.make_node("LeakyRelu", ["a"], ["y"], alpha=0.2),
        ],
        [helper.make_opsetid("", OPSET)],
    )
    return [drop, scale]


def _small_initializers() -> list[TensorProto]:
    channel = np.ones(CHANNELS, dtype=np.float32)
    return [
        numpy_helper.from_array(np.array(0.5, dtype=np.float32), "ratio"),
        numpy_helper.from_array(np.array(True), "mode_true"),
        numpy_helper.from_array(np.array(False), "mode_false"),
        numpy_helper.from_array(np.array(True), "cond"),
        numpy_helper.from_array(channel, "bn_scale"),
        numpy_helper.from_array(channel * 0, "bn_bias"),
        numpy_helper.from_array(channel * 0, "bn_mean"),
        numpy_helper.from_array(channel, "bn_var"),
    ]


def _model(
    nodes: list[onnx.NodeProto],
    last: str,
    initializers: list[TensorProto],
    out_shape: tuple[int | str, ...] = SHAPE,
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "bench",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
        [helper.make_tensor_value_info(last, TensorProto.FLOAT, out_shape)],
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(LOCAL_DOMAIN, 1)],
        functions=_functions(),
        producer_name="exportcheck-bench",
    )
    model.ir_version = 8
    return model


def _blocks(count: int, src: str = "x") -> tuple[list[onnx.NodeProto], str]:
    nodes: list[onnx.NodeProto] = []
    for index in range(count):
        nodes += _block(index, src)
        src = nodes[-1].output[0]
    return nodes, src


def count_nodes(model: onnx.ModelProto) -> int:
    """Nodes in the main graph, every nested subgraph and every function body."""
    stack: list = [model.graph, *model.functions]
    total = 0
    while stack:
        graph = stack.pop()
        for node in graph.node:
            total += 1
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    stack.append(attr.g)
                elif attr.type == onnx.AttributeProto.GRAPHS:
                    stack.extend(attr.graphs)
    return total


def make_graph_file(folder: str, nodes: int, label: str) -> Input:
    """A graph of about `nodes` nodes in blocks of fifty, saved as one protobuf file."""
    body, last = _blocks(max(1, nodes // BLOCK_NODES))
    model = _model(body, last, _small_initializers())
    path = os.path.join(folder, f"graph_{label}.onnx")
    onnx.save(model, path)
    return Input(label, path, count_nodes(model), os.path.getsize(path))


def make_small_file(folder: str, nodes: int = 10) -> Input:
    """A chain of `nodes` Relu nodes: the smallest real graph, for start-up costs."""
    names = ["x", *(f"v{i}" for i in range(nodes))]
    body = [
        helper.make_node("Relu", [a], [b], name=f"relu{i}")
        for i, (a, b) in enumerate(zip(names, names[1:]))
    ]
    value = partial(helper.make_tensor_value_info, elem_type=TensorProto.FLOAT, shape=[1, 4])
    graph = helper.make_graph(body, "small", [value("x")], [value(names[-1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = os.path.join(folder, f"graph_{nodes}_nodes.onnx")
    onnx.save(model, path)
    return Input(f"{nodes} nodes", path, count_nodes(model), os.path.getsize(path))


def _external_weight(name: str, offset: int) -> tuple[TensorProto, int]:
    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=WEIGHT_SHAPE)
    length = int(np.prod(WEIGHT_SHAPE)) * 4
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "weights.bin"), ("offset", offset), ("length", length)):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, str(value)
    return tensor, length


def _check_external(path: str, data_path: str) -> None:
    """Every external entry must name the side file and lie inside it, without overlaps."""
    model = onnx.load(path, load_external_data=False)
    size = os.path.getsize(data_path)
    end = 0
    for tensor in model.graph.initializer:
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        info = {entry.key: entry.value for entry in tensor.external_data}
        offset, length = int(info["offset"]), int(info["length"])
        expected = int(np.prod(tensor.dims)) * 4
        if info["location"] != "weights.bin" or length != expected or offset < end:
            raise RuntimeError(f"bad external data entry for {tensor.name}: {info}")
        if offset % ALIGNMENT or offset + length > size:
            raise RuntimeError(f"external data of {tensor.name} outside {data_path}: {info}")
        end = offset + length


def make_external_file(folder: str, blocks: int = 20) -> Input:
    """A 1,000-node graph whose eight MatMul weights (2 GiB) live in a sparse side file."""
    body, src = _blocks(blocks)
    weights: list[TensorProto] = []
    offset = 0
    for index in range(WEIGHT_COUNT):
        tensor, length = _external_weight(f"W{index}", offset)
        weights.append(tensor)
        offset += -(-length // ALIGNMENT) * ALIGNMENT
        dst = f"mm{index}"
        body.append(helper.make_node("MatMul", [src, tensor.name], [dst], name=f"/proj.{index}"))
        src = dst
    # The MatMul shapes do not line up: the file only has to be read, never run.
    model = _model(body, src, _small_initializers() + weights, out_shape=("n", "d"))
    folder = os.path.join(folder, "external")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "model_2gb.onnx")
    data_path = os.path.join(folder, "weights.bin")
    with open(data_path, "wb") as handle:
        handle.truncate(offset)  # sparse: zero pages cost no disk and no write time
    onnx.save(model, path)
    _check_external(path, data_path)
    return Input("2gb-external", path, count_nodes(model), os.path.getsize(path), offset)


MIXED_FILES = 50
MIXED_SIZES = (1_000, 2_000, 5_000, 10_000)  # ONNX nodes, in turn
TORCH_SHARE = 8 / 50  # of a mixed folder's files are .pt, as many are .pt2; the rest .onnx
TORCH_DEPTHS = (4, 8, 16, 32)  # blocks of the small torch models, in turn
TORCH_WIDTH = 32


def _small_torch_model(depth: int):
    """Linear + BatchNorm1d + ReLU + Dropout blocks, eval mode, and an example input."""
    import torch
    from torch import nn

    torch.manual_seed(depth)
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [
            nn.Linear(TORCH_WIDTH, TORCH_WIDTH),
            nn.BatchNorm1d(TORCH_WIDTH),
            nn.ReLU(),
            nn.Dropout(0.1),
        ]
    return nn.Sequential(*layers).eval(), (torch.randn(2, TORCH_WIDTH),)


def torch_artifacts_for_mixed_folder(folder: str, each: int) -> list[str]:
    """`each` TorchScript `.pt` files (traced and scripted in turn) and `each` torch.export
    `.pt2` files of small models of TORCH_DEPTHS blocks, written into `folder`."""
    import torch

    paths = []
    for index in range(each):
        depth = TORCH_DEPTHS[index % len(TORCH_DEPTHS)]
        model, inputs = _small_torch_model(depth)
        how = "traced" if index % 2 == 0 else "scripted"
        script_path = os.path.join(folder, f"torch_{index:02d}_{how}.pt")
        with torch.no_grad():
            scripted = (
                torch.jit.trace(model, inputs) if how == "traced" else torch.jit.script(model)
            )
        scripted.save(script_path)
        program_path = os.path.join(folder, f"torch_{index:02d}_exported.pt2")
        torch.export.save(torch.export.export(model, inputs), program_path)
        paths += [script_path, program_path]
    return paths


def _artifact_nodes(path: str) -> int:
    from exportcheck.readers import read_artifact

    return read_artifact(path, frozenset()).node_count


def make_mixed_folder(folder: str, files: int = MIXED_FILES) -> tuple[Input, list[str]]:
    """A folder of `files` models of varied sizes for one `exportcheck inspect FOLDER`: mostly
    `.onnx`, and a TORCH_SHARE each of `.pt` and `.pt2`. Returns it and every file's path."""
    target = os.path.join(folder, f"mixed_{files}")
    os.makedirs(target, exist_ok=True)
    each = round(files * TORCH_SHARE)
    paths: list[str] = []
    nodes = 0
    for index in range(files - 2 * each):
        size = MIXED_SIZES[index % len(MIXED_SIZES)]
        body, last = _blocks(max(1, size // BLOCK_NODES))
        model = _model(body, last, _small_initializers())
        path = os.path.join(target, f"model_{index:02d}.onnx")
        onnx.save(model, path)
        paths.append(path)
        nodes += count_nodes(model)
    torch_paths = torch_artifacts_for_mixed_folder(target, each)
    nodes += sum(_artifact_nodes(p) for p in torch_paths)
    paths += torch_paths
    total = sum(os.path.getsize(p) for p in paths)
    label = f"{len(paths)} files"
    return Input(label, target, nodes, total), paths

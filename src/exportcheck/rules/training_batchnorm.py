"""BatchNorm that normalizes with batch statistics in the deployed graph (`training-batchnorm`).

What it finds
    An ONNX `BatchNormalization` with attribute `training_mode=1` or with more than one output
    (the running-statistics outputs only exist in training mode); TorchScript `aten::batch_norm`
    whose `training` argument is true (read by name: the last argument is `cudnn_enabled`) and
    `aten::instance_norm` with `use_input_stats` true while running statistics are given;
    torch.export batch norm with `training=True` (including
    `_native_batch_norm_legit_functional`) or running-statistics buffers among the buffers the
    program mutates.

    Only batch norm that normalizes activations counts. The rule walks the normalized input's
    producers (`NodeView.graph.producer`): when every path ends in a parameter, buffer or
    constant (an ONNX initializer or `Constant`, a TorchScript parameter, buffer or constant,
    a torch.export `p_`/`b_`/`c_` placeholder or `get_attr`) and none in a model input (nor
    in a node whose subgraphs read outer values by name, an ONNX `If` or `Loop`), it is
    weight standardization (timm's `StdConv2d`: `F.batch_norm(weight.reshape(1, out, -1),
    None, None, training=True)`), a fixed computation, not batch statistics. Batch norm over
    a reshape of the activations into a batch of one (constant shape starting with 1), with no
    running statistics, is the instance/group-norm decomposition: its statistics are each
    sample's own, which is that layer's definition. Every other case is reported, including
    `track_running_stats=False` on activations and any batch norm given running statistics.

Why it is wrong
    In training mode BatchNorm normalizes each batch with that batch's own mean and variance
    and updates its running statistics. Deployed, one sample's output then depends on the other
    samples in its batch, a batch of one is normalized to nothing, and the learned running
    statistics are ignored. The legacy ONNX exporter with `TrainingMode.PRESERVE`,
    `torch.jit.trace` of a train-mode model and `torch.export` of one all keep it so.

How to fix
    Call `model.eval()` before exporting; with the legacy exporter leave `training` at its
    default (`TrainingMode.EVAL`). For a layer meant to use batch statistics at inference, say
    so explicitly and suppress this finding with a reason.
"""

from __future__ import annotations

from collections.abc import Iterator

from exportcheck.readers.view import ArtifactView, NodeView
from exportcheck.results.findings import Severity
from exportcheck.rules.base import Hit, Rule

_TORCH_TRAINING_ARG = {
    "aten::batch_norm": "training",
    "aten::native_batch_norm": "training",
    "aten::_native_batch_norm_legit": "training",
    "aten::_native_batch_norm_legit_functional": "training",
    "aten::cudnn_batch_norm": "training",
    "aten::miopen_batch_norm": "training",
}
_ALWAYS_TRAINING = frozenset(
    {"aten::_batch_norm_with_update", "aten::_batch_norm_with_update_functional"}
)
_RUNNING_STATS = ("running_mean", "running_var")
_FIXED_OPS = frozenset({"Constant", "prim::GetAttr", "prim::Constant"})
_RESHAPE_OPS = {
    "Reshape": "shape",
    "aten::view": "size",
    "aten::reshape": "shape",
    "aten::_unsafe_view": "size",
}
# How readers name a value that no node computes and that holds weights: an ONNX initializer,
# a TorchScript module attribute.
_FIXED_SOURCES = ("initializer", "parameter or buffer")
# torch.export names lifted parameters, buffers and tensor constants p_*, b_* and c_*.
_LIFTED_PREFIXES = ("placeholder:p_", "placeholder:b_", "placeholder:c_")
# Why a training-mode batch norm over parameters and constants alone is no mode bug.
WEIGHT_STANDARDIZATION = (
    "normalizes values derived from parameters and constants alone (weight "
    "standardization, e.g. timm's StdConv2d): a fixed computation, not batch statistics"
)
# Producers walked before giving up; a walk that gives up counts as activations (reported).
_WALK_BUDGET = 16


def _input_arg(node: NodeView) -> tuple[str, str | None]:
    name = "X" if node.op == "BatchNormalization" else "input"
    return name, node.inputs[0] if node.inputs else None


def _leaf_is_fixed(value: str, consumer: NodeView) -> bool:
    """A value no node in the scope computes: an initializer (fixed) or a graph, function or
    method input (activations); the consumer's argument says which."""
    arg = consumer.input_arg(consumer.inputs.index(value))
    if arg is None:
        return False
    return arg.constant or (arg.source or "").startswith(_FIXED_SOURCES)


def reads_only_fixed_values(node: NodeView) -> bool:
    """Whether the normalized input derives from parameters and constants alone."""
    name, start = _input_arg(node)
    arg = node.arg(name)
    if arg is not None and arg.constant:
        return True
    if start is None or node.graph is None:
        return False
    graph = node.graph
    pending: list[tuple[str, NodeView]] = [(start, node)]
    seen: set[str] = set()
    while pending:
        value, consumer = pending.pop()
        if value in seen:
            continue
        seen.add(value)
        if len(seen) > _WALK_BUDGET:
            return False
        producer = graph.producer(value, consumer)
        if producer is None:
            if not _leaf_is_fixed(value, consumer):
                return False
        elif producer.op in _FIXED_OPS or producer.op.startswith(("get_attr:", *_LIFTED_PREFIXES)):
            continue
        elif producer.op.startswith("placeholder:") or producer.reads_enclosing_scope:
            return False
        else:
            pending.extend((v, producer) for v in producer.inputs if v)
    return True


def is_per_sample_decomposition(node: NodeView) -> bool:
    """Batch norm over activations reshaped into one sample, without running statistics: the
    exporters' instance/group-norm decomposition."""
    running = node.arg("running_mean")
    if running is not None and not (running.constant and running.value is None):
        return False
    _, start = _input_arg(node)
    if start is None or node.graph is None:
        return False
    producer = node.graph.producer(start, node)
    if producer is None or producer.op not in _RESHAPE_OPS:
        return False
    shape = producer.arg(_RESHAPE_OPS[producer.op])
    if shape is None or not shape.constant:
        return False
    dims = shape.value.tolist() if hasattr(shape.value, "tolist") else shape.value
    return isinstance(dims, (list, tuple)) and len(dims) > 1 and dims[0] == 1


def training_message(node: NodeView) -> str | None:
    """Why a batch-norm node runs in training mode, or None when it does not."""
    if node.op == "BatchNormalization":
        mode = node.arg("training_mode")
        extra_outputs = [o for o in node.outputs[1:] if o]
        if mode is not None and mode.truthy():
            return "BatchNormalization has training_mode=1 (batch statistics)"
        if extra_outputs:
            return (
                f"BatchNormalization has {len(extra_outputs) + 1} outputs: running-statistics "
                "outputs exist only in training mode"
            )
        return None
    if node.op in _ALWAYS_TRAINING:
        return f"{node.op} always normalizes with batch statistics"
    if node.op == "aten::instance_norm":
        stats = node.arg("use_input_stats")
        running = node.arg("running_mean")
        has_running = running is not None and not (running.constant and running.value is None)
        if stats is not None and stats.truthy() and has_running:
            return (
                "aten::instance_norm uses input statistics although running statistics "
                f"are given (use_input_stats from {stats.source})"
            )
        return None
    training = node.arg(_TORCH_TRAINING_ARG[node.op])
    if training is not None and training.truthy():
        return f"{node.op} runs with training=True (from {training.source})"
    return None


def intended_batch_statistics(node: NodeView) -> str | None:
    """Why a training-mode batch norm computes what the eval-mode model computes too (weight
    standardization, a per-sample decomposition), or None when it normalizes activations with
    batch statistics. The one walk both this rule and `exportcheck fix` decide by."""
    if reads_only_fixed_values(node):
        return WEIGHT_STANDARDIZATION
    if is_per_sample_decomposition(node):
        return (
            "normalizes activations reshaped into a batch of one without running statistics: "
            "the instance/group-norm decomposition, each sample's own statistics"
        )
    return None


class TrainingBatchNorm(Rule):
    slug = "training-batchnorm"
    code = "EC102"
    severity = Severity.ERROR
    summary = "BatchNorm left in training mode: outputs depend on the batch, running stats ignored"
    ops = (
        frozenset({"BatchNormalization", "aten::instance_norm"})
        | frozenset(_TORCH_TRAINING_ARG)
        | _ALWAYS_TRAINING
    )

    def check_node(self, node: NodeView) -> Iterator[Hit]:
        message = training_message(node)
        hit = None if message is None else Hit(message, node)
        # The producer walk runs only for batch norm already found in training mode: it may
        # build the scope's producer index, which a graph of eval-mode batch norms never needs.
        if hit is None or (node.op != "aten::instance_norm" and intended_batch_statistics(node)):
            return
        yield hit

    def check_artifact(self, view: ArtifactView) -> Iterator[Hit]:
        for buffer in view.mutated_buffers:
            if buffer.rsplit(".", 1)[-1] in _RUNNING_STATS:
                module = buffer.rsplit(".", 1)[0] if "." in buffer else None
                yield Hit(
                    f"the program updates BatchNorm buffer {buffer!r} on every call "
                    "(training-mode batch norm)",
                    scope="graph signature",
                    module=module,
                    node_name=buffer,
                )

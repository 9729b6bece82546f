"""BatchNorm that normalizes with batch statistics in the deployed graph (`training-batchnorm`).

What it finds
    An ONNX `BatchNormalization` with attribute `training_mode=1` or with more than one output
    (the running-statistics outputs only exist in training mode); TorchScript `aten::batch_norm`
    whose `training` argument is true (read by name: the last argument is `cudnn_enabled`) and
    `aten::instance_norm` with `use_input_stats` true while running statistics are given;
    torch.export batch norm with `training=True` (including
    `_native_batch_norm_legit_functional`) or running-statistics buffers among the buffers the
    program mutates.

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
        if node.op == "BatchNormalization":
            mode = node.arg("training_mode")
            extra_outputs = [o for o in node.outputs[1:] if o]
            if mode is not None and mode.truthy():
                yield Hit("BatchNormalization has training_mode=1 (batch statistics)", node)
            elif extra_outputs:
                yield Hit(
                    f"BatchNormalization has {len(extra_outputs) + 1} outputs: running-statistics "
                    "outputs exist only in training mode",
                    node,
                )
        elif node.op in _ALWAYS_TRAINING:
            yield Hit(f"{node.op} always normalizes with batch statistics", node)
        elif node.op == "aten::instance_norm":
            stats = node.arg("use_input_stats")
            running = node.arg("running_mean")
            has_running = running is not None and not (running.constant and running.value is None)
            if stats is not None and stats.truthy() and has_running:
                yield Hit(
                    "aten::instance_norm uses input statistics although running statistics "
                    f"are given (use_input_stats from {stats.source})",
                    node,
                )
        else:
            training = node.arg(_TORCH_TRAINING_ARG[node.op])
            if training is not None and training.truthy():
                yield Hit(f"{node.op} runs with training=True (from {training.source})", node)

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

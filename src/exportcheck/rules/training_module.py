"""A TorchScript submodule saved with `training=True` (`training-module`).

What it finds
    Every submodule of a TorchScript archive whose saved `training` flag is true, with its
    module path.

Why it is wrong
    A scripted module reads its `training` flag at run time: Dropout drops and BatchNorm uses
    batch statistics until someone calls `.eval()` on the loaded archive, which C++ and serving
    runtimes rarely do. In a traced module the flag is worse than useless: `torch.jit.trace`
    baked the training-mode branches in as constants, so calling `.eval()` afterwards changes
    the flag but not the computation.

    Where every module saved in training mode is one of torch's own classes whose saved code
    never reads the flag (a fake quantizer after torch's QAT recipe, a Linear), it is a
    warning: the graph rules judge torch's mode-dependent layers by their explicit ops.

How to fix
    Call `model.eval()` before `torch.jit.script` or `torch.jit.trace` and save again.
"""

from __future__ import annotations

from collections.abc import Iterator

from exportcheck.readers.view import ArtifactView
from exportcheck.results.findings import Severity
from exportcheck.rules.base import Hit, Rule


class TrainingModule(Rule):
    slug = "training-module"
    code = "EC104"
    severity = Severity.ERROR
    summary = "TorchScript submodule saved in training mode"

    def check_artifact(self, view: ArtifactView) -> Iterator[Hit]:
        training = {flag.path for flag in view.modules if flag.training}
        readers = {flag.path for flag in view.modules if flag.training and flag.reads_training}
        for flag in view.modules:
            parent = flag.path.rsplit(".", 1)[0] if "." in flag.path else ""
            if not flag.training or (flag.path and parent in training):
                continue
            where = flag.path or "<root>"
            inside = sum(
                1 for p in training if p.startswith(f"{flag.path}.") or (p and not flag.path)
            )
            also = f" with {inside} submodule(s) below it" if inside else ""
            below = [p for p in readers if p == flag.path or p.startswith(f"{flag.path}.")]
            if not flag.path:
                below = sorted(readers)
            if below:
                effect = f"; its code reads the flag ({', '.join(sorted(below)[:3]) or '<root>'})"
                severity = None
            else:
                effect = (
                    "; only torch layers whose code never reads the flag are in training mode "
                    "below it, so it computes the same in either mode"
                )
                severity = Severity.WARNING
            yield Hit(
                f"module {where} ({flag.type_name}){also} was saved with training=True{effect}",
                scope="module flags",
                module=flag.path or None,
                module_type=flag.type_name,
                node_name=where,
                severity=severity,
            )

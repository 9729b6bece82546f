"""Repair: a training-mode artifact rewritten to eval-mode semantics where that is provably what
eval-mode PyTorch computes, with a node-by-node diff; and the mode-relevant changes between two
artifacts (what an optimizer removed, fused or switched).

One rewrite per artifact kind, found through `REWRITES`; TorchScript is refused with the reason
(`torchscript_policy`).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from exportcheck.readers import detect_kind
from exportcheck.readers.view import ArtifactKind
from exportcheck.repair.writing import check_destination, write_atomically
from exportcheck.results.repair import NodeRepair, RepairResult


def _rewrite_onnx(path: str, output: str) -> tuple[list[NodeRepair], str]:
    from exportcheck.readers.onnx import load_model
    from exportcheck.readers.onnx.external_data import external_data_files
    from exportcheck.readers.onnx.load import read_model_bytes
    from exportcheck.repair.onnx_rewrite import repair_model

    serialized = read_model_bytes(path)
    model = load_model(path, serialized)
    # Every external reference is a `location` key, stored as plain bytes: a file without one
    # names no side file, and its graphs need no walk to say so.
    side_files = external_data_files(path, model) if b"location" in serialized else []
    check_destination(output, path, side_files)
    lines = repair_model(path, model, serialized)
    del serialized
    repaired = model.SerializeToString()
    del model

    def write(temporary: str) -> None:
        with open(temporary, "wb") as handle:
            handle.write(repaired)

    write_atomically(output, write)
    return lines, ""


def _rewrite_program(path: str, output: str) -> tuple[list[NodeRepair], str]:
    from exportcheck.repair.program_rewrite import repair_program

    check_destination(output, path, [])
    program, lines = repair_program(path)

    def write(temporary: str) -> None:
        import torch

        torch.export.save(program, temporary)

    write_atomically(output, write)
    return lines, ""


def _refuse_torchscript(path: str, output: str) -> tuple[list[NodeRepair], str]:
    from exportcheck.repair.torchscript_policy import refuse_torchscript

    raise refuse_torchscript(path)


REWRITES: dict[ArtifactKind, Callable[[str, str], tuple[list[NodeRepair], str]]] = {
    ArtifactKind.ONNX: _rewrite_onnx,
    ArtifactKind.EXPORTED_PROGRAM: _rewrite_program,
    ArtifactKind.TORCHSCRIPT: _refuse_torchscript,
}


def repair_artifact(
    artifact: str | os.PathLike[str], output: str | os.PathLike[str]
) -> RepairResult:
    """Rewrites `artifact` into `output` (atomically, never over the input) and returns the
    diff; the proof is the pipeline's (`exportcheck.fix`)."""
    path, destination = os.fspath(artifact), os.fspath(output)
    kind = detect_kind(path)
    lines, note = REWRITES[kind](path, destination)
    if not any(line.action.value == "changed" for line in lines):
        note = note or _nothing_changed(lines)
    return RepairResult(path, destination, kind.value, tuple(lines), note=note)


def _nothing_changed(lines: list[NodeRepair]) -> str:
    if not lines:
        return "no Dropout or batch norm in the artifact: nothing to repair (written unchanged)"
    return "no node in training mode by mistake: nothing changed (written unchanged)"

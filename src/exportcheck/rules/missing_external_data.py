"""An ONNX model whose external weight file is missing (`missing-external-data`).

What it finds
    An initializer stored as external data whose `location` file does not exist beside the
    model. Static inspection never reads weights, so inspection goes on; `compare` and any
    runtime will fail to load the model.

Why it is wrong
    The graph was copied without its weights: the artifact cannot run where it was deployed.

How to fix
    Ship the side file with the model (same relative path), or re-save the model with
    `onnx.save_model(..., save_as_external_data=True, location=...)` next to it.
"""

from __future__ import annotations

from collections.abc import Iterator

from exportcheck.readers.view import ArtifactView
from exportcheck.results.findings import Severity
from exportcheck.rules.base import Hit, Rule


class MissingExternalData(Rule):
    slug = "missing-external-data"
    code = "EC107"
    severity = Severity.INFO
    summary = "External weight file missing: the model was inspected but cannot run"

    def check_artifact(self, view: ArtifactView) -> Iterator[Hit]:
        for note in view.notes:
            if note.code == self.slug:
                yield Hit(note.message, scope=note.scope)

"""`exportcheck fix` on timm's BiT (ResNetV2 with StdConv2d), exported correctly: nothing is
a mode bug, so nothing changes, and the diff says why. Runs in the model-family environment."""

from __future__ import annotations

import warnings

import pytest

import exportcheck
from exportcheck.export.exporters import Exporter
from exportcheck.results.repair import Action
from tests.conftest import require_model_family
from tests.corpus.models import timm_bit

pytestmark = pytest.mark.model_family


@pytest.mark.parametrize("fmt", ["onnx-legacy", "onnx", "exported-program"])
def test_bit_exported_in_eval_mode_is_left_unchanged(tmp_path, fmt):
    require_model_family("timm")
    model, inputs = timm_bit()
    model.eval()
    suffix = ".pt2" if fmt == "exported-program" else ".onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        source = Exporter(model, inputs).export(fmt, str(tmp_path / f"bit{suffix}")).path
    result = exportcheck.fix(
        source, tmp_path / f"fixed{suffix}", against=model, example_inputs=inputs, devices="cpu"
    )
    assert not result.changed and not result.refused
    assert "nothing" in result.note
    intended = result.with_action(Action.INTENDED)
    # The legacy exporter and torch.export keep StdConv2d's weight standardization as batch
    # norm in training mode over the (reshaped) weight, which training-batchnorm's walk calls
    # intended; the dynamo exporter folds it into constants.
    if fmt != "onnx":
        assert intended and all(
            n.reason.startswith("batch statistics on purpose") for n in intended
        )
    assert result.proof_holds, [(s.check, s.detail) for s in result.proof]

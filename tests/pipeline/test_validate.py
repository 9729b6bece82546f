"""`validate` end to end on the sample models, and the guarantees around it."""

from __future__ import annotations

from collections import defaultdict

import pytest
import torch
from torch import nn

import exportcheck
from exportcheck.auditing.modes import eval_mode
from exportcheck.errors import InputSpecError, ModelRunError, TargetError
from exportcheck.targets.python_targets import build_target, inputs_from_shapes, parse_shape
from tests.conftest import SAMPLE_NAMES, SAMPLES, build_sample, sample_expected


def errors_by_rule(report, subject):
    found = defaultdict(set)
    for finding in report.active_findings:
        if finding.subject == subject and finding.severity is exportcheck.Severity.ERROR:
            found[finding.rule].add(finding.location.module)
    return found


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_demo_matches_each_samples_declaration(demo_report, name):
    subject = f"{SAMPLES / name}.py:build"
    assert subject in demo_report.subjects
    expected = sample_expected(name)["validate"]
    found = errors_by_rule(demo_report, subject)
    assert set(found) == set(expected)
    for rule, modules in expected.items():
        assert set(modules) <= found[rule], rule


def test_clean_models_pass_every_comparison(demo_report):
    clean = {f"{SAMPLES / n}.py:build" for n in SAMPLE_NAMES if not sample_expected(n)["validate"]}
    compared = [c for c in demo_report.comparisons if c.subject in clean]
    assert compared and all(c.passed for c in compared)
    formats = {c.artifact_format for c in compared}
    assert formats == {
        "onnx",
        "onnx-legacy",
        "torchscript-trace",
        "torchscript-script",
        "exported-program",
    }


def test_onnx_is_compared_at_both_optimization_levels_and_two_batch_sizes(demo_report):
    subject = f"{SAMPLES / 'cnn'}.py:build"
    onnx = [
        c
        for c in demo_report.comparisons
        if c.subject == subject and c.artifact_format == "onnx" and c.runtime == "onnxruntime"
    ]
    assert {c.optimization for c in onnx} == {"disable_all", "default"}
    assert {c.batch_size for c in onnx} == {4, 5}


def test_training_dropout_shows_only_with_optimizations_off(demo_report):
    """ORT's default level deletes a training Dropout; ORT_DISABLE_ALL runs it."""
    subject = f"{SAMPLES / 'bad_functional_dropout'}.py:build"
    unstable = [
        f
        for f in demo_report.findings
        if f.subject == subject
        and f.rule == "runtime-nondeterminism"
        and "onnxruntime" in f.message
    ]
    assert unstable and all("disable_all" in f.message for f in unstable)


def test_missing_cuda_is_reported_not_dropped():
    model, inputs = build_sample("custom_mode_layer")
    report = exportcheck.validate(model, inputs, formats=["onnx-legacy"], devices="all")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert any(s.device == "cuda" and "CUDA" in s.reason for s in report.skipped)
    assert report.ok


def test_user_model_comes_back_as_it_went_in():
    model, inputs = build_sample("bad_train_override")
    model.train()
    model.head.eval()  # frozen on purpose: must stay so
    flags = {name: m.training for name, m in model.named_modules()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    exportcheck.validate(model, inputs, formats=["torchscript-trace", "onnx-legacy"], devices="cpu")
    assert flags == {name: m.training for name, m in model.named_modules()}
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_eval_mode_context_restores_each_flag():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(), nn.BatchNorm1d(2))
    model.train()
    model[2].eval()
    with eval_mode(model) as inside:
        assert not any(m.training for m in inside.modules())
        assert torch.is_inference_mode_enabled()
    assert [m.training for m in model.modules()] == [True, True, True, False]


def test_train_mode_export_is_attributed_to_training_mode(tmp_path):
    model, inputs = build_sample("cnn")
    model.train()
    model.dropout.eval()
    artifact = tmp_path / "cnn-bn-train.legacy.onnx"
    torch.onnx.export(
        model, inputs, str(artifact), dynamo=False, training=torch.onnx.TrainingMode.PRESERVE
    )
    fresh, inputs = build_sample("cnn")
    report = exportcheck.compare(artifact, fresh, inputs, devices="cpu")
    rules = {f.rule for f in report.findings}
    assert {"training-batchnorm", "output-mismatch"} <= rules
    mismatch = next(f for f in report.findings if f.rule == "output-mismatch")
    assert "matches the model in training mode with Dropout off" in mismatch.message
    assert not report.ok


def test_tolerance_override_is_recorded_and_rejudges(demo_report):
    model, inputs = build_sample("transformer")
    report = exportcheck.validate(
        model, inputs, formats=["exported-program"], devices="cpu", rtol=0.0, atol=0.0
    )
    tolerances = {
        (c.tolerance.rtol, c.tolerance.atol, c.tolerance.source)
        for c in report.comparisons
        if c.run == "compare"
    }
    assert tolerances == {(0.0, 0.0, "command line")}
    failing = [c for c in report.comparisons if not c.passed]
    assert failing, "a zero tolerance must catch the ~1e-7 noise of a transformer export"
    assert all(c.metrics.max_abs < 1e-4 for c in failing)


def test_probes_tolerate_noise_but_catch_batch_statistics():
    """Measured: ~1e-7 sample-vs-batch noise on CPU; batch statistics differ around 1e-1."""
    model, inputs = build_sample("transformer")
    assert exportcheck.audit(model).ok
    bad, bad_inputs = build_sample("bad_batchnorm_no_running_stats")
    from exportcheck.auditing.probes import run_probes

    with eval_mode(bad, inference=False):
        outcome = run_probes(bad, bad_inputs, "bn")
    [finding] = outcome.findings
    assert finding.rule == "batch-dependent-eval" and finding.location.module == "bn"


def test_stale_batchnorm_statistics_are_warned():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    report = exportcheck.audit(model)
    assert [f.location.module for f in report.findings if f.rule == "stale-batchnorm-stats"] == [
        "1"
    ]
    assert report.ok  # a warning does not fail at the default --fail-on error


def test_custom_mode_dependent_module_is_listed():
    model, _ = build_sample("custom_mode_layer")
    report = exportcheck.audit(model)
    assert [f.location.module for f in report.findings if f.rule == "mode-dependent-module"] == [
        "mode_scale"
    ]


def test_nan_outputs_are_a_finding_not_a_crash():
    class Nan(nn.Module):
        def forward(self, x):
            return x / torch.zeros_like(x) * 0

    report = exportcheck.validate(
        Nan(), (torch.randn(2, 3),), formats=["torchscript-trace"], devices="cpu"
    )
    assert any(f.rule == "nonfinite-output" for f in report.findings)


def test_forward_that_raises_is_an_input_error():
    class Broken(nn.Module):
        def forward(self, x):
            raise ValueError("shape mismatch")

    with pytest.raises(ModelRunError, match="shape mismatch"):
        exportcheck.validate(Broken(), (torch.randn(2, 3),), devices="cpu")


def test_unexportable_format_is_skipped_with_the_exporters_reason():
    class DataDependent(nn.Module):
        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow: torch.export refuses it
                return x * 2
            return x - 1

    report = exportcheck.validate(
        DataDependent(), (torch.ones(2, 3),), formats=["exported-program"], devices="cpu"
    )
    [skip] = [s for s in report.skipped if s.step == "export exported-program"]
    assert skip.reason


def test_target_forms_and_errors(tmp_path):
    script = tmp_path / "m.py"
    script.write_text(
        "import torch\n"
        "def only_module():\n    return torch.nn.Linear(3, 2)\n"
        "def not_a_module():\n    return 42\n"
        "value = 3\n"
    )
    target = build_target(f"{script}:only_module", input_shapes=["2x3"])
    assert target.inputs[0].shape == (2, 3)
    with pytest.raises(InputSpecError, match="--input-shape"):
        build_target(f"{script}:only_module")
    with pytest.raises(TargetError, match="expected an nn.Module"):
        build_target(f"{script}:not_a_module")
    with pytest.raises(TargetError, match="not callable"):
        build_target(f"{script}:value")
    assert build_target("tests.targets_module:build").inputs[0].shape == (1, 4)


def test_input_shapes_and_files(tmp_path):
    assert parse_shape("2x128:int64") == ((2, 128), "int64")
    [tokens] = inputs_from_shapes(["2x5:int64"])
    assert tokens.dtype == torch.int64
    for bad in ("2xx3", "0x3", "3:float99", "abc"):
        with pytest.raises(InputSpecError):
            parse_shape(bad)
    torch.save((torch.ones(1, 4),), tmp_path / "inputs.pt")
    import numpy as np

    np.savez(tmp_path / "inputs.npz", np.ones((1, 4), dtype=np.float32))
    for name in ("inputs.pt", "inputs.npz"):
        target = build_target("tests.targets_module:build", inputs_file=str(tmp_path / name))
        assert target.inputs[0].shape == (1, 4)


def test_input_shape_that_does_not_fit_the_model():
    model = nn.Linear(4, 2)
    with pytest.raises(ModelRunError):
        exportcheck.validate(
            model, inputs_from_shapes(["2x7"]), devices="cpu", formats=["onnx-legacy"]
        )


def test_validation_writes_nothing_into_the_users_folder(tmp_path):
    import shutil

    shutil.copy(SAMPLES / "cnn.py", tmp_path / "cnn.py")
    shutil.copy(SAMPLES / "_common.py", tmp_path / "_common.py")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    report = exportcheck.validate(
        *build_sample("custom_mode_layer"), formats=["onnx-legacy"], devices="cpu"
    )
    target = build_target(f"{tmp_path / 'cnn.py'}:build")
    exportcheck.validate(target.model, target.inputs, formats=["torchscript-trace"], devices="cpu")
    assert report.ok
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_out_of_memory_is_a_clear_input_error(tmp_path):
    from exportcheck.pipeline.validation import validate_targets

    script = tmp_path / "huge.py"
    script.write_text("def build():\n    raise MemoryError()\n")
    report = validate_targets([f"{script}:build"], devices="cpu")
    [problem] = report.errors
    assert "MemoryError" in problem.message or "out of memory" in problem.message
    assert report.exit_code() == 2


def _external_model(tmp_path, location):
    import onnx

    model, inputs = build_sample("custom_mode_layer")
    model.eval()
    path = tmp_path / "model.onnx"
    torch.onnx.export(model, inputs, str(path), dynamo=False)
    proto = onnx.load(str(path))
    onnx.save_model(
        proto, str(path), save_as_external_data=True, location="weights.bin", size_threshold=0
    )
    proto = onnx.load(str(path), load_external_data=False)
    for tensor in proto.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save_model(proto, str(path))
    return path, inputs


def test_compare_refuses_missing_and_escaping_external_data(tmp_path):
    from exportcheck.errors import MissingExternalDataError, UnsafeExternalDataError

    path, inputs = _external_model(tmp_path, "weights.bin")
    model, _ = build_sample("custom_mode_layer")
    assert exportcheck.compare(path, model, inputs, devices="cpu").ok
    (tmp_path / "weights.bin").rename(tmp_path / "elsewhere.bin")
    with pytest.raises(MissingExternalDataError, match="weights.bin"):
        exportcheck.compare(path, model, inputs, devices="cpu")
    for location in ("../elsewhere.bin", str(tmp_path / "elsewhere.bin")):
        path, inputs = _external_model(tmp_path, location)
        with pytest.raises(UnsafeExternalDataError):
            exportcheck.compare(path, model, inputs, devices="cpu")


def test_a_zero_rate_functional_dropout_passes_validate_in_every_format():
    """`F.dropout(x, 0.0)` (attention dropout configured to 0) drops nothing: no error in any
    format, only the info that an identity is left in the graph, and the warning that OpenVINO,
    which refuses every training-mode Dropout whatever its ratio, cannot load the ONNX files."""
    from tests.readers.conftest import zero_rate_dropout

    model, inputs = zero_rate_dropout()
    report = exportcheck.validate(model, inputs, devices="cpu")
    warned = [f for f in report.findings if f.severity >= exportcheck.Severity.WARNING]
    assert all(
        f.rule == "runtime-refusal" and f.message.startswith("OpenVINO refuses") for f in warned
    ), [(f.rule, f.message) for f in warned]
    assert {f.rule for f in report.findings} <= {
        "noop-dropout",
        "mode-dependent-module",
        "runtime-refusal",
    }
    assert "noop-dropout" in {f.rule for f in report.findings}
    assert report.comparisons and all(c.passed for c in report.comparisons)
    assert report.exit_code() == 0

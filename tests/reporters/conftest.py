"""Sample Reports for the reporter tests, built from the rules and dataclasses alone (no torch,
no export)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from exportcheck.results.comparison import Comparison, OutputMetrics, Tolerance
from exportcheck.results.findings import Location, Suppression
from exportcheck.results.report import InputProblem, Report, Skipped
from exportcheck.rules import (
    NondeterministicEval,
    NoopDropout,
    OutputMismatch,
    RandomOp,
    RuntimeNondeterminism,
    SubmoduleLeftTraining,
    TrainingBatchNorm,
    TrainingDropout,
    TrainingModule,
    rule_descriptors,
)

PROJECT = Path(__file__).resolve().parents[2]
SHARED_SCHEMAS = PROJECT.parent / "shared" / "schemas"
"""The official SARIF and JUnit schemas (`../shared/schemas` beside the project root)."""
ROOT = "/work/project"
"""The root the grouped sample's source paths are shown relative to."""

ONNX = "models/encoder.onnx"
TARGET = "train.py:build"


def metrics(max_abs: float, mismatched: int = 0, total: int = 64, **extra: object) -> OutputMetrics:
    values: dict[str, object] = {
        "shape": (2, 32),
        "expected_shape": (2, 32),
        "dtype": "float32",
        "expected_dtype": "float32",
        "max_abs": max_abs,
        "max_rel": max_abs * 10,
        "mismatched": mismatched,
        "total": total,
    }
    values.update(extra)
    return OutputMetrics(**values)  # type: ignore[arg-type]


def comparison(output: str, m: OutputMetrics, **extra: object) -> Comparison:
    values: dict[str, object] = {
        "subject": ONNX,
        "artifact": ONNX,
        "artifact_format": "onnx",
        "runtime": "onnxruntime",
        "device": "cpu",
        "output": output,
        "metrics": m,
        "tolerance": Tolerance(rtol=1e-4, atol=1e-5),
    }
    values.update(extra)
    return Comparison(**values)  # type: ignore[arg-type]


TRAINING_DROPOUT = TrainingDropout.finding(
    message="Dropout runs in training mode (training_mode is constant true, from initializer)",
    subject=ONNX,
    location=Location(
        artifact=ONNX,
        scope="main_graph",
        node="/encoder/dropout/Dropout",
        op_type="Dropout",
        module="encoder.dropout",
    ),
)
RANDOM_OP = RandomOp.finding(
    message="RandomNormalLike in an inference graph",
    subject=ONNX,
    location=Location(artifact=ONNX, scope="main_graph", node="noise", op_type="RandomNormalLike"),
)
NOOP_DROPOUT = NoopDropout.finding(
    message="Dropout with ratio 0 does nothing",
    subject=ONNX,
    location=Location(artifact=ONNX, scope="main_graph", node="/head/Dropout", op_type="Dropout"),
)
SUPPRESSED = TrainingBatchNorm.finding(
    message="BatchNormalization uses batch statistics | training_mode=1",
    subject=ONNX,
    location=Location(artifact=ONNX, scope="main_graph", node="bn", module="encoder.bn"),
)
SUPPRESSED = replace(
    SUPPRESSED, suppressed=Suppression(reason="known issue | tracked in #12", entry=0)
)
AUDIT = SubmoduleLeftTraining.finding(
    message="encoder.dropout is still in training mode after model.eval()",
    subject=TARGET,
    location=Location(module="encoder.dropout"),
)
MISMATCH = OutputMismatch.finding(
    message="logits differs from the eval-mode model: max_abs=0.5",
    subject=ONNX,
    location=Location(artifact=ONNX),
)


RULES = rule_descriptors()

TAGGER = "models/tagger.py:build"
ART_ONNX = "onnx: tagger-1a2b3c4d.onnx (temporary)"
ART_PT2 = "exported-program: tagger-1a2b3c4d.pt2 (temporary)"
ORT = "onnx on onnxruntime/CPU/cpu/disable_all"
TORCH = "exported-program on torch/cpu"
HEAD_SOURCE = {"source_file": f"{ROOT}/models/tagger.py", "source_line": 14}


def _grouped() -> Report:
    """One model whose `F.dropout` in `head` shows up in two artifacts, in the probe and in
    every runtime; a second whose Linear is left training; a third with a mismatch nothing
    explains."""
    dropout_onnx = TrainingDropout.finding(
        "Dropout runs in training mode",
        TAGGER,
        Location(artifact=ART_ONNX, scope="main", node="drop_1", op_type="Dropout", module="head"),
    )
    dropout_pt2 = TrainingDropout.finding(
        "aten::dropout runs with train=True (from constant)",
        TAGGER,
        Location(artifact=ART_PT2, node="dropout", module="head", **HEAD_SOURCE),
    )
    probe = NondeterministicEval.finding(
        "two eval-mode forwards of the same input differ by up to 0.3 on cpu",
        TAGGER,
        Location(module="head", module_type="Head", runtime="pytorch eval (cpu)", **HEAD_SOURCE),
    )
    unstable = RuntimeNondeterminism.finding(
        f"{ORT}: two runs of the same input differ by up to 0.25 in logits",
        TAGGER,
        Location(artifact=ART_ONNX, module="head", runtime=ORT),
    )
    mismatch_onnx = OutputMismatch.finding(
        f"{ORT} differs from the eval-mode model in logits@batch4 (max abs 0.36)",
        TAGGER,
        Location(artifact=ART_ONNX, module="head", runtime=ORT),
    )
    mismatch_pt2 = OutputMismatch.finding(
        f"{TORCH} differs from the eval-mode model in logits@batch4 (max abs 0.2)",
        TAGGER,
        Location(artifact=ART_PT2, module="head", runtime=TORCH),
    )
    left = SubmoduleLeftTraining.finding(
        "body.fc (Linear) is still in training mode after model.eval()",
        "models/frozen.py:build",
        Location(
            scope="module tree",
            module="body.fc",
            module_type="Linear",
            source_file="/venv/lib/python3.11/site-packages/torch/nn/modules/linear.py",
            source_line=53,
        ),
    )
    saved_training = TrainingModule.finding(
        "module body.fc (Linear) was saved with training=True",
        "models/frozen.py:build",
        Location(artifact="torchscript-trace: frozen.pt (temporary)", module="body.fc"),
    )
    unexplained = OutputMismatch.finding(
        f"{ORT} differs from the eval-mode model in out@batch4 (max abs 0.01)",
        "models/odd.py:build",
        Location(artifact="onnx: odd.onnx (temporary)", runtime=ORT),
    )
    onnx_run = {
        "subject": TAGGER,
        "artifact": ART_ONNX,
        "provider": "CPUExecutionProvider",
        "optimization": "disable_all",
    }
    pt2_run = {
        "subject": TAGGER,
        "artifact": ART_PT2,
        "artifact_format": "exported-program",
        "runtime": "torch",
    }
    comparisons = (
        comparison("logits", metrics(0.36, mismatched=30), batch_size=4, **onnx_run),
        comparison("logits", metrics(0.25, mismatched=20), batch_size=4, run="repeat", **onnx_run),
        comparison("logits", metrics(0.2, mismatched=10), batch_size=4, **pt2_run),
        comparison(
            "out",
            metrics(0.01, mismatched=3),
            subject="models/odd.py:build",
            artifact="onnx: odd.onnx (temporary)",
            provider="CPUExecutionProvider",
            optimization="disable_all",
            batch_size=4,
        ),
        comparison("logits", metrics(1e-7), subject="models/clean.py:build", artifact=None),
    )
    return Report(
        rules=RULES,
        subjects=(TAGGER, "models/frozen.py:build", "models/odd.py:build", "models/clean.py:build"),
        findings=(
            probe,
            dropout_onnx,
            unstable,
            mismatch_onnx,
            dropout_pt2,
            mismatch_pt2,
            left,
            saved_training,
            unexplained,
        ),
        comparisons=comparisons,
        root=ROOT,
    )


def _samples() -> dict[str, Report]:
    passing = comparison("logits", metrics(1e-7))
    failing = comparison(
        "logits",
        metrics(0.5, mismatched=40),
        provider="CUDAExecutionProvider",
        device="cuda",
        optimization="disable_all",
        batch_size=4,
    )
    shape_bad = comparison(
        "hidden", metrics(0.0, shape=(2, 16)), artifact_format="torchscript-trace"
    )
    return {
        "empty": Report(rules=RULES),
        "clean": Report(subjects=(ONNX,), rules=RULES),
        "findings": Report(
            rules=RULES,
            subjects=(ONNX, TARGET),
            findings=(TRAINING_DROPOUT, RANDOM_OP, NOOP_DROPOUT, SUPPRESSED, AUDIT),
        ),
        "comparisons": Report(
            rules=RULES,
            subjects=(ONNX,),
            findings=(MISMATCH,),
            comparisons=(passing, failing, shape_bad),
        ),
        "skipped_and_errors": Report(
            rules=RULES,
            subjects=(ONNX, "broken.onnx"),
            comparisons=(passing,),
            skipped=(
                Skipped(ONNX, "compare", "no CUDA device", artifact=ONNX, device="cuda"),
                Skipped(ONNX, "export onnx-legacy", "exporter raised: unsupported op"),
            ),
            errors=(
                InputProblem(
                    "broken.onnx",
                    "not an ONNX model (protobuf parse failed)",
                    2,
                    "UnreadableArtifactError",
                ),
                InputProblem("missing.pt", "no such file or directory"),
            ),
            unused_suppressions=({"entry": 3, "rule": "random-op", "reason": "old"},),
        ),
        "odd_paths": Report(
            rules=RULES,
            subjects=(
                "pkg.models:build",
                "/abs/dir/model.onnx",
                "C:\\models\\net.onnx",
                "my dir/we:ird.onnx",
            ),
            findings=(
                AUDIT.with_subject("pkg.models:build"),
                replace(
                    RANDOM_OP,
                    subject="/abs/dir/model.onnx",
                    location=replace(RANDOM_OP.location, artifact="/abs/dir/model.onnx"),
                ),
                replace(
                    NOOP_DROPOUT,
                    subject="C:\\models\\net.onnx",
                    location=replace(NOOP_DROPOUT.location, artifact="C:\\models\\net.onnx"),
                ),
                TrainingDropout.finding(
                    message="control \x01 char and `backticks` <here> *stars*",
                    subject="my dir/we:ird.onnx",
                    location=Location(artifact="my dir/we:ird.onnx", node="a|b", module="x|y"),
                ),
            ),
        ),
        "grouped": _grouped(),
        "many": Report(
            rules=RULES,
            subjects=(ONNX,),
            findings=tuple(
                RandomOp.finding(
                    message=f"random op {i}",
                    subject=ONNX,
                    location=Location(artifact=ONNX, node=f"rand_{i}"),
                )
                for i in range(60)
            ),
            fail_on="warning",
        ),
    }


SAMPLES = _samples()


@pytest.fixture
def samples() -> dict[str, Report]:
    return SAMPLES


@pytest.fixture(params=sorted(SAMPLES))
def sample_report(request: pytest.FixtureRequest) -> Report:
    return SAMPLES[request.param]

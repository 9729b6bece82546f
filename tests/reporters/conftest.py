"""Sample Reports for the reporter tests, built from the rules and dataclasses alone (no torch,
no export)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from exportcheck.results.comparison import Comparison, OutputMetrics, Tolerance
from exportcheck.results.findings import Location, Suppression
from exportcheck.results.report import InputProblem, Report, Skipped
from exportcheck.rules import (
    NoopDropout,
    OutputMismatch,
    RandomOp,
    SubmoduleLeftTraining,
    TrainingBatchNorm,
    TrainingDropout,
    rule_descriptors,
)

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

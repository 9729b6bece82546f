"""Shared fixtures: sample models and their exports, each made once per session on first use."""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from exportcheck.export.exporters import FORMATS

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_models"
SAMPLE_NAMES = sorted(
    p.stem for p in SAMPLES.glob("*.py") if not p.name.startswith("_") and p.stem != "check_demo"
)


@functools.cache
def _check_demo():
    spec = importlib.util.spec_from_file_location("check_demo", SAMPLES / "check_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sample_expected(name: str) -> dict:
    """A sample's EXPECTED declaration, read by the demo's own parser."""
    return _check_demo().declared(str(SAMPLES / f"{name}.py"))


def build_sample(name: str):
    """(model, inputs) from a sample file, imported the way a target is."""
    from exportcheck.targets.python_targets import build_target

    target = build_target(f"{SAMPLES / name}.py:build")
    return target.model, target.inputs


def report_summary(report) -> tuple[list, list, list]:
    """What a report found, compared and skipped, without the timings and paths that differ
    between two runs of the same validation."""
    return (
        sorted(
            (f.rule, f.location.module or "", f.location.runtime or "") for f in report.findings
        ),
        sorted(
            (c.artifact_format, c.runtime_label, c.output, c.batch_size, c.run, c.passed)
            for c in report.comparisons
        ),
        sorted((s.step, s.reason) for s in report.skipped),
    )


def require_model_family(package: str):
    """The model family's package, imported. `scripts/dev.sh test` runs the `model_family` tests
    in the torch 2.14.1 environment, where a missing package fails the run: elsewhere (a CPU torch
    beside PyPI's CUDA torchvision, which fails to import) the test is skipped with the reason."""
    try:
        return importlib.import_module(package)
    except Exception as error:
        reason = f"{package} cannot be imported here: {type(error).__name__}: {error}"
        if os.environ.get("EXPORTCHECK_REQUIRE_MODEL_FAMILIES"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


class SampleExports(Mapping):
    """(sample, mode, format) -> artifact path, or None where the exporter refused.

    Each artifact is exported on first use and kept for the session, so a test that needs one
    export pays for that one alone; iterating exports every combination."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._paths: dict[tuple[str, str, str], str | None] = {}
        self._keys = [
            (name, mode, fmt)
            for name in SAMPLE_NAMES
            for mode in ("train", "eval")
            for fmt in FORMATS
        ]

    def __getitem__(self, key: tuple[str, str, str]) -> str | None:
        if key not in self._paths:
            if key not in self._keys:
                raise KeyError(key)
            self._paths[key] = self._export(*key)
        return self._paths[key]

    def _export(self, name: str, mode: str, fmt: str) -> str | None:
        from exportcheck.export.exporters import SUFFIXES, Exporter, ExportFailed

        model, inputs = build_sample(name)
        model.train(mode == "train")
        path = str(self._folder / f"{name}.{mode}{SUFFIXES[fmt]}")
        try:
            return Exporter(model, inputs).export(fmt, path).path
        except ExportFailed:
            return None

    def __iter__(self) -> Iterator[tuple[str, str, str]]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


@pytest.fixture(scope="session")
def sample_exports(tmp_path_factory: pytest.TempPathFactory) -> SampleExports:
    return SampleExports(tmp_path_factory.mktemp("exports"))


@pytest.fixture(scope="session")
def demo_report():
    """`validate sample_models --device cpu`, run once for the whole session."""
    from exportcheck.pipeline.validation import validate_targets

    return validate_targets([str(SAMPLES)], devices="cpu")

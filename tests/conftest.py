"""Shared fixtures: every sample model exported once per session, in train and eval mode."""

from __future__ import annotations

import ast
import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_models"
SAMPLE_NAMES = sorted(
    p.stem for p in SAMPLES.glob("*.py") if not p.name.startswith("_") and p.stem != "check_demo"
)


def sample_expected(name: str) -> dict:
    tree = ast.parse((SAMPLES / f"{name}.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            getattr(t, "id", None) == "EXPECTED" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} declares no EXPECTED")


def build_sample(name: str):
    """(model, inputs) from a sample file, imported the way a target is."""
    from exportcheck.targets.python_targets import build_target

    target = build_target(f"{SAMPLES / name}.py:build")
    return target.model, target.inputs


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def sample_exports(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[tuple[str, str, str], str | None]:
    """(sample, mode, format) -> artifact path, or None where the exporter refused."""
    from exportcheck.export.exporters import FORMATS, SUFFIXES, Exporter, ExportFailed

    folder = tmp_path_factory.mktemp("exports")
    exports: dict[tuple[str, str, str], str | None] = {}
    for name in SAMPLE_NAMES:
        for mode in ("train", "eval"):
            model, inputs = build_sample(name)
            model.train(mode == "train")
            exporter = Exporter(model, inputs)
            for fmt in FORMATS:
                path = str(folder / f"{name}.{mode}{SUFFIXES[fmt]}")
                try:
                    exports[(name, mode, fmt)] = exporter.export(fmt, path).path
                except ExportFailed:
                    exports[(name, mode, fmt)] = None
    return exports


@pytest.fixture(scope="session")
def demo_report():
    """`validate sample_models --device cpu`, run once for the whole session."""
    from exportcheck.pipeline.validation import validate_targets

    return validate_targets([str(SAMPLES)], devices="cpu")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


def load_module_from(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module

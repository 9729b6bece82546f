"""Layering: the library never imports the CLI stack; light commands never import torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "exportcheck"
CLI = PACKAGE / "cli"
FORBIDDEN_IN_LIBRARY = ("typer", "rich.console", "click")


def library_files(folder: Path = PACKAGE) -> list[Path]:
    """The library's modules: the package less the CLI application installed inside it."""
    return sorted(p for p in folder.rglob("*.py") if CLI not in p.parents)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", library_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_library_does_not_import_cli_stack(path):
    if path.name == "__main__.py":
        return
    for name in imported_modules(path):
        assert not any(name == f or name.startswith(f + ".") for f in FORBIDDEN_IN_LIBRARY), (
            f"{path.relative_to(ROOT)} imports {name}"
        )


def test_library_never_prints():
    for path in library_files():
        tree = ast.parse(path.read_text())
        calls = [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.Call)
            and isinstance(n.func, ast.Name)
            and n.func.id in ("print", "exit")
        ]
        assert not calls, f"{path.relative_to(ROOT)} calls print/exit"


def modules_loaded_by(args: list[str]) -> set[str]:
    probe = (
        "import sys, atexit\n"
        "atexit.register(lambda: sys.__stderr__.write('\\nLOADED ' + ' '.join(sorted(sys.modules)) + '\\n'))\n"
        "sys.argv = ['exportcheck'] + sys.argv[1:]\n"
        "from exportcheck.cli.main import main\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=120
    )
    line = next(line for line in result.stderr.splitlines() if line.startswith("LOADED "))
    return set(line.split()[1:])


@pytest.mark.parametrize(
    "args", [["--help"], ["rules"], ["explain", "training-dropout"], ["merge", "--help"]]
)
def test_light_commands_import_neither_torch_nor_onnxruntime(args):
    loaded = modules_loaded_by(args)
    assert "torch" not in loaded
    assert "onnxruntime" not in loaded


@pytest.mark.parametrize("args", [["--help"], ["inspect", "--help"], ["inspect", "--bogus"]])
def test_help_and_usage_errors_in_a_pipe_skip_rich(args):
    """Rich panels are for a terminal: into a pipe, Click's plain text, without rich's import
    (80 ms of every `--help`)."""
    loaded = modules_loaded_by(args)
    assert not {"rich", "typer.rich_utils"} & loaded


def test_inspecting_onnx_imports_only_what_parsing_needs(sample_exports):
    """The generated protobuf classes are loaded by location: not the onnx package, whose
    onnx.helper pulls ml_dtypes (0.8 s), and not torch or onnxruntime. The training-mode
    export gives findings, so the rules read constants (numpy-free scalars) too."""
    loaded = modules_loaded_by(
        ["inspect", sample_exports[("cnn", "train", "onnx")], "--fail-on", "never"]
    )
    assert "google.protobuf" in loaded
    for heavy in ("onnx", "onnx.helper", "ml_dtypes", "numpy", "torch", "onnxruntime"):
        assert heavy not in loaded, heavy


def test_python_dash_m_runs_the_cli():
    result = subprocess.run(
        [sys.executable, "-m", "exportcheck", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and "exportcheck" in result.stdout


# What each stage package may import from the rest of exportcheck. The package root is only
# ever imported for `__version__`, and `errors` is the one exception family every stage raises.
SHARED = ("exportcheck", "exportcheck.errors")
# Listed in the order data flows: each stage may import those above it, never one below.
LAYERS = {
    "results": ("exportcheck.results",),
    "readers": ("exportcheck.readers", "exportcheck.results"),
    "rules": ("exportcheck.rules", "exportcheck.readers.view", "exportcheck.results"),
    "graph_checks": (
        "exportcheck.graph_checks",
        "exportcheck.readers",
        "exportcheck.rules",
        "exportcheck.results",
    ),
    "numerics": ("exportcheck.numerics", "exportcheck.results"),
    "auditing": (
        "exportcheck.auditing",
        "exportcheck.numerics",
        "exportcheck.rules",
        "exportcheck.results",
    ),
    "localization": (
        "exportcheck.localization",
        "exportcheck.numerics",
        "exportcheck.readers",
        "exportcheck.rules",
        "exportcheck.results",
    ),
    "comparison": (
        "exportcheck.comparison",
        "exportcheck.localization",
        "exportcheck.auditing",
        "exportcheck.graph_checks",
        "exportcheck.numerics",
        "exportcheck.readers",
        "exportcheck.rules",
        "exportcheck.results",
    ),
    "repair": (
        "exportcheck.repair",
        "exportcheck.comparison",
        "exportcheck.graph_checks",
        "exportcheck.numerics",
        "exportcheck.readers",
        "exportcheck.rules",
        "exportcheck.results",
    ),
    "reporters": ("exportcheck.reporters", "exportcheck.results"),
}


def _first_party(path: Path) -> set[str]:
    return {
        name
        for name in imported_modules(path)
        if name == "exportcheck" or name.startswith("exportcheck.")
    }


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_each_layer_imports_only_what_it_may(layer):
    allowed = LAYERS[layer]
    for path in library_files(PACKAGE / layer):
        for name in _first_party(path):
            ok = name in SHARED or any(name == a or name.startswith(a + ".") for a in allowed)
            assert ok, f"{path.relative_to(ROOT)} imports {name}, outside {layer}'s layer"


def test_layers_import_only_down_the_pipeline():
    """No stage may import one listed after it: the imports between stages run one way."""
    order = list(LAYERS)
    for position, layer in enumerate(order):
        for allowed in LAYERS[layer]:
            stage = allowed.removeprefix("exportcheck.").split(".")[0]
            assert order.index(stage) <= position, f"{layer} may import {stage}, listed after it"


# The one place the library ends a process: a copy it forked itself, which must never return
# into the caller's code (a test runner, exit handlers) and so leaves with os._exit.
ENDS_ITS_OWN_FORK = {("pipeline/forked_exports.py", "_run_copy")}


def test_library_never_imports_the_cli_or_exits():
    for module, function in ENDS_ITS_OWN_FORK:
        source = ast.parse((PACKAGE / module).read_text())
        assert any(getattr(n, "name", None) == function for n in ast.walk(source)), function
    for path in library_files():
        if path.name == "__main__.py":
            continue
        tree = ast.parse(path.read_text())
        relative = path.relative_to(PACKAGE).as_posix()
        allowed = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef) and (relative, node.name) in ENDS_ITS_OWN_FORK
            for inner in ast.walk(node)
        }
        for node in ast.walk(tree):
            if id(node) in allowed:
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                names.append(getattr(node, "module", None) or "")
                assert not any(n.startswith("exportcheck.cli") for n in names), path
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and (node.func.value.id, node.func.attr) in {("sys", "exit"), ("os", "_exit")}
            ):
                raise AssertionError(f"{path.relative_to(ROOT)} calls {node.func.attr}")


def test_top_level_holds_only_entry_points_and_stage_packages():
    modules = {p.name for p in PACKAGE.glob("*.py")}
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()} - {"cli"}
    assert modules == {
        "__init__.py",
        "__main__.py",
        "errors.py",
        "pytest_plugin.py",
        "testing.py",
    }
    assert packages == {
        "auditing",
        "comparison",
        "export",
        "graph_checks",
        "localization",
        "numerics",
        "pipeline",
        "readers",
        "repair",
        "reporters",
        "results",
        "rules",
        "settings",
        "targets",
    }


@pytest.mark.parametrize("name", ["inspect", "validate", "compare", "audit", "eval_mode", "fix"])
def test_public_api_names_are_functions_not_stage_packages(name):
    import exportcheck
    import exportcheck.auditing  # noqa: F401 - a stage package must not shadow `audit`
    import exportcheck.comparison  # noqa: F401 - nor `compare`

    assert callable(getattr(exportcheck, name))

"""docs/runtimes.md is what scripts/runtime_table.py measures: every verdict cell, so the page
cannot go stale when a runtime changes its behaviour (the versions in it may differ)."""

from __future__ import annotations

import importlib.util

from tests.conftest import ROOT


def _table(page: str) -> dict[str, list[str]]:
    """Runtime name -> the cells after the runtime's own (its title and version)."""
    rows = {}
    for line in page.splitlines():
        if line.startswith("| ") and not line.startswith(("| runtime ", "| (sample")):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            rows[cells[0].split()[0]] = cells[1:]
    return rows


def test_the_runtime_page_matches_what_each_runtime_does():
    spec = importlib.util.spec_from_file_location(
        "runtime_table", ROOT / "scripts/runtime_table.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    measured = _table(script.render(script.measure()))
    committed = _table(script.PAGE.read_text())
    assert set(measured) <= set(committed), "a runtime is missing from docs/runtimes.md"
    for runtime, cells in measured.items():
        assert cells == committed[runtime], (
            f"{runtime} behaves otherwise than docs/runtimes.md says: run "
            "`python scripts/runtime_table.py --write`"
        )

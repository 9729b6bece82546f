"""Options are defined once, in option groups, and every command that takes a group gets all
of it, with the same flags and help."""

from __future__ import annotations

import dataclasses

import pytest
import typer

from exportcheck.cli.main import app
from exportcheck.cli.options import (
    ComparisonOptions,
    InputOptions,
    ManyTargetOptions,
    ReportOptions,
)

COMMANDS = {
    "inspect": (ReportOptions,),
    "validate": (ReportOptions, InputOptions, ComparisonOptions, ManyTargetOptions),
    "compare": (ReportOptions, InputOptions, ComparisonOptions),
    "audit": (ReportOptions, InputOptions, ManyTargetOptions),
}


def options_of(name: str) -> dict[str, tuple[tuple[str, ...], str]]:
    command = typer.main.get_command(app).commands[name]
    return {p.name: (tuple(p.opts), p.help or "") for p in command.params}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_takes_its_groups_whole(name):
    params = options_of(name)
    for group in COMMANDS[name]:
        for field in dataclasses.fields(group):
            assert field.name in params, f"{name} lacks {field.name} of {group.__name__}"


def test_a_shared_option_reads_the_same_in_every_command():
    seen = [options_of(name)["output"] for name in COMMANDS]
    assert all(options == seen[0] for options in seen)
    assert "--output" in seen[0][0] and "-o" in seen[0][0]


def test_audit_takes_no_tolerances():
    assert "rtol" not in options_of("audit") and "require_comparisons" not in options_of("audit")

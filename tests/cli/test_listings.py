"""The listings reporters: pure functions from plain data to text, fed by the CLI."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from exportcheck.cli.main import app
from exportcheck.reporters.listings import (
    RuleEntry,
    SettingEntry,
    render_explanation,
    render_rules,
    render_settings,
)
from exportcheck.rules import RULES

ENTRIES = [
    RuleEntry("EC900", "long-slug-name", "error", "inspect", "first summary", "Doc one."),
    RuleEntry("EC901", "short", "info", "compare", "second summary", "Doc two."),
]


def test_rules_text_aligns_the_slugs():
    assert render_rules(ENTRIES) == (
        "EC900  long-slug-name  error    inspect  first summary\n"
        "EC901  short           info     compare  second summary\n"
    )


def test_rules_json_keeps_the_documented_keys():
    assert json.loads(render_rules(ENTRIES, "json"))[1] == {
        "slug": "short",
        "code": "EC901",
        "severity": "info",
        "stage": "compare",
        "summary": "second summary",
    }


def test_explanation_heads_the_doc_with_code_slug_severity_and_stage():
    assert render_explanation(ENTRIES[1]) == "EC901 short (info, compare stage)\n\nDoc two.\n"


def test_settings_text_and_json_carry_values_and_sources():
    settings = [
        SettingEntry("fail-on", "warning", "pyproject.toml"),
        SettingEntry("jobs", 1, "default"),
    ]
    assert render_settings("pyproject.toml", settings) == (
        'config file: pyproject.toml\nfail-on  "warning"  (pyproject.toml)\njobs     1  (default)\n'
    )
    assert json.loads(render_settings(None, settings, "json")) == {
        "config_file": None,
        "settings": {
            "fail-on": {"value": "warning", "source": "pyproject.toml"},
            "jobs": {"value": 1, "source": "default"},
        },
    }


def test_the_rules_command_lists_every_rule_class_in_order():
    result = CliRunner().invoke(app, ["rules", "--format", "json"])
    assert result.exit_code == 0
    assert [row["code"] for row in json.loads(result.stdout)] == [rule.code for rule in RULES]


def test_a_listing_format_it_does_not_take_is_exit_2():
    result = CliRunner().invoke(app, ["rules", "--format", "sarif"])
    assert result.exit_code == 2 and "'sarif' is not one of text, json" in result.stderr

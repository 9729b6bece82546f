"""The rule catalogue: unique identities, complete documentation, lookups."""

from __future__ import annotations

import re

import pytest

from exportcheck.results.catalogue import DOC_SECTIONS
from exportcheck.results.findings import Severity
from exportcheck.rules import RULES, get_rule, graph_rules


def test_slugs_and_codes_are_unique():
    slugs = [r.slug for r in RULES]
    codes = [r.code for r in RULES]
    assert len(set(slugs)) == len(slugs)
    assert len(set(codes)) == len(codes)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.slug)
def test_every_rule_is_documented(rule):
    assert rule.missing_sections() == [], f"{rule.slug} lacks {rule.missing_sections()}"
    assert re.fullmatch(r"[a-z]+(-[a-z]+)*", rule.slug)
    assert re.fullmatch(r"EC\d{3}", rule.code)
    assert isinstance(rule.severity, Severity)
    assert rule.summary and not rule.summary.endswith(".")
    assert f"`{rule.slug}`" in rule.doc().splitlines()[0]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.slug)
def test_lookup_by_slug_and_code(rule):
    assert get_rule(rule.slug) is rule
    assert get_rule(rule.code.lower()) is rule


def test_unknown_rule_names_the_catalogue():
    with pytest.raises(KeyError, match="exportcheck rules"):
        get_rule("no-such-rule")


def test_graph_rules_declare_what_they_read():
    for rule in graph_rules():
        overridden = type(rule).check_node is not type(rule).__mro__[-2].check_node
        assert rule.ops or not overridden, f"{rule.slug} checks nodes but asks for none"


def test_a_rule_missing_a_documentation_section_is_reported(tmp_path, monkeypatch):
    module = tmp_path / "half_documented_rule.py"
    module.write_text(
        '''"""A rule documented in part (`half-documented`).

What it finds
    Something.

How to fix
    Something else.
"""

from exportcheck.results.findings import Severity
from exportcheck.rules.base import Rule


class HalfDocumented(Rule):
    slug = "half-documented"
    code = "EC999"
    severity = Severity.INFO
    summary = "A rule without its why"
'''
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    from half_documented_rule import HalfDocumented

    assert HalfDocumented.missing_sections() == ["Why it is wrong"]
    assert DOC_SECTIONS[1] == "Why it is wrong"

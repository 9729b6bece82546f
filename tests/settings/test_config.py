"""Settings files, command-line overrides, severity overrides and reasoned suppressions."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from exportcheck.cli.main import app
from exportcheck.errors import ConfigError
from exportcheck.results.findings import Finding, Location, Severity
from exportcheck.results.report import Report
from exportcheck.settings.config import load_settings
from exportcheck.settings.policy import apply_policy

runner = CliRunner()


def write(tmp_path, text):
    path = tmp_path / "pyproject.toml"
    path.write_text("[tool.exportcheck]\n" + text)
    return path


def finding(
    rule="training-dropout", module="block", subject="models/a.py:build", severity=Severity.ERROR
):
    return Finding(rule, "EC101", severity, "msg", subject, Location(module=module, node="n1"))


def test_file_values_and_sources(tmp_path):
    write(tmp_path, 'fail-on = "warning"\nrtol = 1e-4\nformats = ["onnx"]\n')
    settings = load_settings(cwd=str(tmp_path))
    assert settings.fail_on == "warning" and settings.rtol == 1e-4 and settings.formats == ("onnx",)
    assert settings.source("fail_on").endswith("pyproject.toml")
    assert settings.source("atol") == "default"


def test_flags_override_the_file(tmp_path):
    write(tmp_path, 'fail-on = "warning"\n')
    settings = load_settings(cwd=str(tmp_path), overrides={"fail_on": "never", "rtol": None})
    assert settings.fail_on == "never" and settings.source("fail_on") == "command line"


def test_config_file_found_from_a_subfolder(tmp_path):
    write(tmp_path, 'device = "cpu"\n')
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    assert load_settings(cwd=str(nested)).device == "cpu"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('fail_on = "error"\n', "unknown key 'fail_on'"),
        ('fail-on = "sometimes"\n', "fail-on must be one of"),
        ("rtol = -1\n", "rtol must be a finite number >= 0"),
        ("rtol = nan\n", "rtol must be a finite number >= 0"),
        ("atol = inf\n", "atol must be a finite number >= 0"),
        ("timeout = 0\n", "timeout must be a finite number of seconds > 0"),
        ("timeout = nan\n", "timeout must be a finite number of seconds > 0"),
        ("timeout = -inf\n", "timeout must be a finite number of seconds > 0"),
        (
            "[tool.exportcheck.output-tolerances]\nlogits = { rtol = nan }\n",
            "output-tolerances.logits.rtol must be a finite",
        ),
        ('select = ["no-such-rule"]\n', "unknown rule 'no-such-rule'"),
        ('[[tool.exportcheck.ignore]]\nrule = "random-op"\n', "needs a non-empty reason"),
        (
            '[[tool.exportcheck.ignore]]\nrule = "random-op"\nreason = "x"\nwhere = "y"\n',
            "unknown key 'where'",
        ),
        ('[tool.exportcheck.severity]\nrandom-op = "fatal"\n', "unknown severity"),
        ("rtol = \n", "invalid TOML"),
    ],
)
def test_bad_settings_name_the_key(tmp_path, text, message):
    write(tmp_path, text)
    with pytest.raises(ConfigError, match=message):
        load_settings(cwd=str(tmp_path))


def test_suppression_marks_and_unused_entries_are_reported(tmp_path):
    write(
        tmp_path,
        "[[tool.exportcheck.ignore]]\n"
        'rule = "training-dropout"\nmodule = "bl*"\nsubject = "models/*.py:*"\nreason = "reviewed: MC dropout"\n'
        "[[tool.exportcheck.ignore]]\n"
        'rule = "random-op"\nreason = "never happens"\n',
    )
    settings = load_settings(cwd=str(tmp_path))
    report = apply_policy(Report(subjects=("models/a.py:build",), findings=(finding(),)), settings)
    [only] = report.findings
    assert only.suppressed.reason == "reviewed: MC dropout" and only.suppressed.entry == 1
    assert report.exit_code() == 0 and report.counts()["error"] == 0
    assert [u["entry"] for u in report.unused_suppressions] == [2]
    assert report.to_dict()["findings"][0]["suppressed"]["reason"] == "reviewed: MC dropout"


def test_suppression_globs_must_all_match(tmp_path):
    write(
        tmp_path,
        '[[tool.exportcheck.ignore]]\nrule = "training-dropout"\nmodule = "head"\nreason = "r"\n',
    )
    report = apply_policy(
        Report(findings=(finding(module="block"),)), load_settings(cwd=str(tmp_path))
    )
    assert report.findings[0].suppressed is None and report.exit_code() == 1


def test_severity_override_select_and_ignore(tmp_path):
    write(tmp_path, '[tool.exportcheck.severity]\nrandom-op = "error"\n')
    settings = load_settings(cwd=str(tmp_path), overrides={"ignore_rules": ("training-dropout",)})
    report = apply_policy(
        Report(findings=(finding(), finding(rule="random-op", severity=Severity.WARNING))), settings
    )
    assert [(f.rule, f.severity) for f in report.findings] == [("random-op", Severity.ERROR)]
    only = load_settings(cwd=str(tmp_path), overrides={"select": ("training-module",)})
    assert apply_policy(Report(findings=(finding(),)), only).findings == ()


def test_config_command_prints_sources(tmp_path, monkeypatch):
    config = tmp_path / "exportcheck.toml"
    config.write_text('fail-on = "info"\n')
    result = runner.invoke(app, ["config", "--config", str(config), "--format", "json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["settings"]["fail-on"] == {"value": "info", "source": str(config)}
    assert data["settings"]["device"]["source"] == "default"


def test_cli_reports_config_errors_as_input_errors(tmp_path, sample_exports):
    config = tmp_path / "bad.toml"
    config.write_text('colour = "blue"\n')
    result = runner.invoke(
        app, ["inspect", sample_exports[("cnn", "eval", "onnx")], "--config", str(config)]
    )
    assert result.exit_code == 2 and "unknown key 'colour'" in result.stderr


def test_fail_on_from_config_applies_to_inspect(tmp_path, sample_exports):
    config = tmp_path / "c.toml"
    config.write_text('fail-on = "never"\n')
    result = runner.invoke(
        app, ["inspect", sample_exports[("cnn", "train", "onnx")], "--config", str(config)]
    )
    assert result.exit_code == 0


def test_select_and_ignore_flags_take_slugs_or_codes(tmp_path):
    write(tmp_path, 'select = ["training-dropout", "training-batchnorm"]\n')
    settings = load_settings(
        cwd=str(tmp_path), overrides={"select": ("EC101",), "ignore_rules": ("training-batchnorm",)}
    )
    assert settings.select == ("training-dropout",)
    assert settings.ignore_rules == ("training-batchnorm",)
    assert settings.source("select") == "command line"


def test_an_ignore_flag_adds_to_the_files_as_in_ruff(tmp_path):
    path = write(tmp_path, 'ignore-rules = ["training-batchnorm"]\n')
    settings = load_settings(cwd=str(tmp_path), overrides={"ignore_rules": ("training-dropout",)})
    assert settings.ignore_rules == ("training-batchnorm", "training-dropout")
    assert settings.source("ignore_rules") == f"{path} + command line"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"select": ("bogus",)}, "--select: unknown rule 'bogus'"),
        ({"ignore_rules": ("EC999",)}, "--ignore: unknown rule 'EC999'"),
        ({"formats": ("onnx", "bogus")}, "--formats must be one of"),
    ],
)
def test_rule_and_format_flags_are_checked_as_the_file_is(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(cwd=str(tmp_path), overrides=overrides)


def test_a_later_sources_suppressions_add_to_the_files_numbered_on(tmp_path):
    from exportcheck.settings.config import with_overrides

    write(tmp_path, '[[tool.exportcheck.ignore]]\nrule = "training-dropout"\nreason = "file"\n')
    later = [{"rule": "EC201", "reason": "call", "module": "head.*"}]
    settings = with_overrides(load_settings(cwd=str(tmp_path)), {"ignore": later}, "the call")
    assert [(e.index, e.rule, e.reason) for e in settings.ignore] == [
        (1, "training-dropout", "file"),
        (2, "submodule-left-training", "call"),
    ]
    with pytest.raises(ConfigError, match="needs a non-empty reason"):
        with_overrides(settings, {"ignore": [{"rule": "EC101"}]}, "the call")

"""Shard reports (JSON, one per `--shard` job) read back and merged into the Report of the whole
run; problems are grouped again from the merged findings, exactly as for one run."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import replace

from exportcheck import __version__
from exportcheck.errors import InputError
from exportcheck.results.problems import repository_root
from exportcheck.results.report import Report, merge_reports
from exportcheck.results.serialized import MalformedReport, report_from_dict
from exportcheck.rules import rule_descriptors

PathLike = str | os.PathLike[str]


def read_report(path: PathLike, root: str | None = None) -> Report:
    """One JSON report; InputError naming the file when it is unreadable, not a JSON report, or
    written by another version of exportcheck (whose findings and fields may mean otherwise)."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as stream:
            data = json.load(stream)
    except OSError as error:
        raise InputError(f"cannot read ({error.strerror or error})", subject=name) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"not a JSON report ({error})", subject=name) from None
    version = data.get("version") if isinstance(data, dict) else None
    if isinstance(version, str) and version != __version__ and data.get("tool") == "exportcheck":
        raise InputError(
            f"written by exportcheck {version}; this is exportcheck {__version__}: merge the "
            "reports of one version (run every shard and the merge with the same release)",
            subject=name,
        )
    try:
        return report_from_dict(data, root or repository_root())
    except MalformedReport as error:
        raise InputError(str(error), subject=name) from None


def merge_files(paths: Sequence[PathLike], fail_on: str = "error") -> Report:
    """The Report of the whole run the shard reports at `paths` are parts of, in the order given."""
    if not paths:
        raise InputError("no reports to merge")
    root = repository_root()
    merged = merge_reports([read_report(path, root) for path in paths], fail_on=fail_on)
    # An ignore entry one shard did not use may match in another: the policy applied to the
    # merged report decides which are unused.
    return replace(merged, unused_suppressions=(), rules=rule_descriptors(), root=root)

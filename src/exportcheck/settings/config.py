"""Project settings from `[tool.exportcheck]` in pyproject.toml or a `--config` file, overridden
by command-line flags, with the source of every value kept for `exportcheck config`."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from exportcheck.errors import ConfigError, clipped
from exportcheck.results.findings import Severity
from exportcheck.results.report import FAIL_ON_CHOICES

if TYPE_CHECKING:
    from exportcheck.results.comparison import Tolerance

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DEFAULT_SOURCE = "default"
SCALAR_KEYS = (
    "fail-on",
    "format",
    "formats",
    "device",
    "rtol",
    "atol",
    "select",
    "ignore-rules",
    "allow-tf32",
    "jobs",
    "timeout",
    "require-comparisons",
    "runtimes",
)
TABLE_KEYS = ("output-tolerances", "severity", "ignore")
IGNORE_KEYS = ("rule", "reason", "subject", "module", "node")


@dataclass(frozen=True)
class IgnoreEntry:
    """A reviewed finding to accept: a rule, optional globs, and the mandatory reason."""

    index: int
    rule: str
    reason: str
    subject: str | None = None
    module: str | None = None
    node: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "entry": self.index,
            "rule": self.rule,
            "reason": self.reason,
            "subject": self.subject,
            "module": self.module,
            "node": self.node,
        }


@dataclass(frozen=True)
class Settings:
    fail_on: str = "error"
    format: str = "text"
    formats: tuple[str, ...] | None = None
    device: str = "all"
    rtol: float | None = None
    atol: float | None = None
    allow_tf32: bool = False
    jobs: int = 1
    timeout: float | None = None
    require_comparisons: bool = False
    runtimes: tuple[str, ...] | None = None
    select: tuple[str, ...] | None = None
    ignore_rules: tuple[str, ...] = ()
    output_tolerances: Mapping[str, Tolerance] = field(default_factory=dict)
    severity: Mapping[str, Severity] = field(default_factory=dict)
    ignore: tuple[IgnoreEntry, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict)
    config_file: str | None = None

    def source(self, key: str) -> str:
        return self.sources.get(key, DEFAULT_SOURCE)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fail-on": self.fail_on,
            "format": self.format,
            "formats": list(self.formats) if self.formats else None,
            "device": self.device,
            "rtol": self.rtol,
            "atol": self.atol,
            "allow-tf32": self.allow_tf32,
            "jobs": self.jobs,
            "timeout": self.timeout,
            "require-comparisons": self.require_comparisons,
            "runtimes": list(self.runtimes) if self.runtimes else None,
            "select": list(self.select) if self.select is not None else None,
            "ignore-rules": list(self.ignore_rules),
            "output-tolerances": {
                k: {"rtol": v.rtol, "atol": v.atol} for k, v in self.output_tolerances.items()
            },
            "severity": {k: v.label for k, v in self.severity.items()},
            "ignore": [e.to_dict() for e in self.ignore],
        }


def find_pyproject(start: str) -> str | None:
    folder = os.path.abspath(start)
    while True:
        candidate = os.path.join(folder, "pyproject.toml")
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"cannot read config ({error.strerror})", subject=path) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"invalid TOML: {error}", subject=path) from None


def read_table(
    config_path: str | None, cwd: str | None = None
) -> tuple[dict[str, Any], str | None]:
    """The `[tool.exportcheck]` table (or a config file's top level) and where it came from."""
    if config_path is not None:
        data = _read_toml(config_path)
        table = data.get("tool", {}).get("exportcheck", data) if "tool" in data else data
        return dict(table), config_path
    pyproject = find_pyproject(cwd or os.getcwd())
    if pyproject is None:
        return {}, None
    table = _read_toml(pyproject).get("tool", {}).get("exportcheck")
    return (dict(table), pyproject) if table is not None else ({}, None)


def _rule_slug(name: Any, where: str, origin: str) -> str:
    from exportcheck.rules import get_rule

    if not isinstance(name, str):
        raise ConfigError(f"{where}: expected a rule name, got {name!r}", subject=origin)
    try:
        return get_rule(name).slug
    except KeyError:
        raise ConfigError(f"{where}: unknown rule {name!r}", subject=origin) from None


# Past these a value is a typo or an attack, not a setting: a tolerance that accepts any
# output, a time limit beyond what the OS timers take, more workers than any machine has.
MAX_TOLERANCE = 1e6
MAX_TIMEOUT_S = 7 * 24 * 3600.0
MAX_JOBS = 1024


def _number(value: Any, key: str, origin: str, low: float, high: float, what: str) -> float:
    """A finite number in [low, high] (NaN compares false with everything, so a NaN tolerance
    would pass any difference; an int too large for a float is refused, not raised)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key} must be {what}, got {clipped(value)}", subject=origin)
    if isinstance(value, int) and not -(2**53) <= value <= 2**53:
        raise ConfigError(
            f"{key} must be {what}, got an integer of {value.bit_length()} bits", subject=origin
        )
    if not math.isfinite(value) or not low <= value <= high:
        raise ConfigError(f"{key} must be {what}, got {value!r}", subject=origin)
    return float(value)


def _tolerance(value: Any, key: str, origin: str) -> float:
    return _number(
        value, key, origin, 0.0, MAX_TOLERANCE, f"a finite number >= 0 (at most {MAX_TOLERANCE:g})"
    )


def _seconds(value: Any, key: str, origin: str) -> float:
    seconds = _number(
        value,
        key,
        origin,
        0.0,
        MAX_TIMEOUT_S,
        f"a finite number of seconds > 0 (at most {MAX_TIMEOUT_S:g}, 7 days)",
    )
    if seconds == 0:
        raise ConfigError(
            f"{key} must be a finite number of seconds > 0, got {value!r}", subject=origin
        )
    return seconds


def _choice(value: Any, key: str, choices: tuple[str, ...], origin: str) -> str:
    if value not in choices:
        raise ConfigError(
            f"{key} must be one of {', '.join(choices)}, got {value!r}", subject=origin
        )
    return value


def _formats(value: Any, key: str, origin: str) -> tuple[str, ...]:
    from exportcheck.export.exporters import FORMATS

    if not isinstance(value, list) or not value:
        raise ConfigError("formats must be a non-empty list", subject=origin)
    return tuple(_choice(v, key, FORMATS, origin) for v in value)


def _runtimes(value: Any, key: str, origin: str) -> tuple[str, ...]:
    from exportcheck.comparison.runtimes import RUNTIME_NAMES

    if not isinstance(value, list) or not value:
        raise ConfigError("runtimes must be a non-empty list", subject=origin)
    return tuple(dict.fromkeys(_choice(v, key, RUNTIME_NAMES, origin) for v in value))


def _report_format(value: Any, key: str, origin: str) -> str:
    from exportcheck.reporters import REPORTERS

    return _choice(value, key, tuple(REPORTERS), origin)


def _flag(value: Any, key: str, origin: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false", subject=origin)
    return value


def _jobs(value: Any, key: str, origin: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_JOBS:
        raise ConfigError(
            f"{key} must be an integer from 1 to {MAX_JOBS}, got {value!r}", subject=origin
        )
    return value


def _rules(value: Any, key: str, origin: str) -> tuple[str, ...]:
    return tuple(_rule_slug(v, key, origin) for v in _list(value, key, origin))


# Flags whose values are checked as the same keys in a file are.
_CHECKED_FLAGS = {
    "rtol": _tolerance,
    "atol": _tolerance,
    "timeout": _seconds,
    "jobs": _jobs,
    "formats": lambda v, k, o: _formats(list(v), k, o),
    "runtimes": lambda v, k, o: _runtimes(list(v), k, o),
    "select": lambda v, k, o: _rules(list(v), k, o),
    "ignore_rules": lambda v, k, o: _rules(list(v), k, o),
}
# The flag that sets a key, where its name is not the key's.
_FLAG_NAMES = {"ignore_rules": "--ignore"}
# Keys whose later values add to the earlier ones instead of replacing them, as ruff's
# `--ignore` adds to the configured ignores while `--select` replaces the configured selection.
_ADDED_KEYS = ("ignore_rules", "ignore")


# Each key of the table and the function that checks its value: (value, key, origin) -> value.
_PARSERS: dict[str, Callable[[Any, str, str], Any]] = {
    "fail-on": lambda v, k, o: _choice(v, k, FAIL_ON_CHOICES, o),
    "format": _report_format,
    "formats": _formats,
    "runtimes": _runtimes,
    "device": lambda v, k, o: _choice(v, k, ("cpu", "cuda", "all"), o),
    "rtol": _tolerance,
    "atol": _tolerance,
    "allow-tf32": _flag,
    "require-comparisons": _flag,
    "jobs": _jobs,
    "timeout": _seconds,
    "select": _rules,
    "ignore-rules": _rules,
    "output-tolerances": lambda v, k, o: _output_tolerances(v, o),
    "severity": lambda v, k, o: _severities(v, o),
    "ignore": lambda v, k, o: _ignores(v, o),
}


def parse_table(table: Mapping[str, Any], origin: str) -> dict[str, Any]:
    """Validated settings from one table; an unknown key is an error that names it."""
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _PARSERS:
            raise ConfigError(
                f"unknown key {key!r} in [tool.exportcheck] (known: {', '.join(SCALAR_KEYS + TABLE_KEYS)})",
                subject=origin,
            )
        values[key.replace("-", "_")] = _PARSERS[key](value, key, origin)
    return values


def _list(value: Any, key: str, origin: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"{key} must be a list", subject=origin)
    return value


def _output_tolerances(value: Any, origin: str) -> dict[str, Tolerance]:
    from exportcheck.results.comparison import Tolerance

    if not isinstance(value, dict):
        raise ConfigError(
            "output-tolerances must be a table of output name = {rtol, atol}", subject=origin
        )
    result = {}
    for name, spec in value.items():
        if not isinstance(spec, dict) or not spec or set(spec) - {"rtol", "atol"}:
            raise ConfigError(f"output-tolerances.{name} takes rtol and atol", subject=origin)
        result[name] = Tolerance(
            rtol=_tolerance(spec.get("rtol", 0.0), f"output-tolerances.{name}.rtol", origin),
            atol=_tolerance(spec.get("atol", 0.0), f"output-tolerances.{name}.atol", origin),
            source=f"output-tolerances.{name} in {os.path.basename(origin)}",
        )
    return result


def _severities(value: Any, origin: str) -> dict[str, Severity]:
    if not isinstance(value, dict):
        raise ConfigError("severity must be a table of rule = level", subject=origin)
    result = {}
    for name, level in value.items():
        slug = _rule_slug(name, "severity", origin)
        try:
            result[slug] = Severity.parse(str(level))
        except ValueError as error:
            raise ConfigError(f"severity.{name}: {error}", subject=origin) from None
    return result


def _ignores(value: Any, origin: str) -> tuple[IgnoreEntry, ...]:
    if not isinstance(value, list):
        raise ConfigError(
            "ignore must be an array of tables ([[tool.exportcheck.ignore]])", subject=origin
        )
    entries = []
    for index, entry in enumerate(value, start=1):
        if not isinstance(entry, dict):
            raise ConfigError(f"ignore entry #{index} must be a table", subject=origin)
        unknown = set(entry) - set(IGNORE_KEYS)
        if unknown:
            raise ConfigError(
                f"ignore entry #{index}: unknown key {sorted(unknown)[0]!r}", subject=origin
            )
        reason = entry.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigError(f"ignore entry #{index} needs a non-empty reason", subject=origin)
        if "rule" not in entry:
            raise ConfigError(f"ignore entry #{index} needs a rule", subject=origin)
        for key in ("subject", "module", "node"):
            if key in entry and not isinstance(entry[key], str):
                raise ConfigError(
                    f"ignore entry #{index}: {key} must be a string pattern", subject=origin
                )
        entries.append(
            IgnoreEntry(
                index,
                _rule_slug(entry["rule"], f"ignore entry #{index}", origin),
                reason.strip(),
                entry.get("subject"),
                entry.get("module"),
                entry.get("node"),
            )
        )
    return tuple(entries)


def load_settings(
    config_path: str | None = None,
    *,
    cwd: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """File settings, then command-line overrides (None means the flag was not given)."""
    table, origin = read_table(config_path, cwd)
    values = parse_table(table, origin) if origin else {}
    sources = {key: origin for key in values} if origin else {}
    settings = Settings(**values, sources=sources, config_file=origin)
    flags = {}
    for key, value in (overrides or {}).items():
        if value is not None:
            check = _CHECKED_FLAGS.get(key)
            flag = _FLAG_NAMES.get(key, f"--{key}")
            flags[key] = check(value, flag, "command line") if check else value
    return _overridden(settings, flags, "command line")


def with_overrides(settings: Settings, table: Mapping[str, Any], origin: str) -> Settings:
    """`settings` with keys spelled and checked as in the file, from a later source (a test's
    marker or call): `ignore-rules` and `ignore` add to the earlier values, the rest replace."""
    return _overridden(settings, parse_table(table, origin), origin)


def _overridden(settings: Settings, values: Mapping[str, Any], origin: str) -> Settings:
    merged = dict(values)
    sources = dict(settings.sources)
    for key in values:
        earlier = getattr(settings, key)
        if key in _ADDED_KEYS and earlier:
            merged[key] = _appended(earlier, values[key])
            sources[key] = f"{sources.get(key, DEFAULT_SOURCE)} + {origin}"
        else:
            sources[key] = origin
    return replace(settings, **merged, sources=sources)


def _appended(earlier: tuple[Any, ...], later: tuple[Any, ...]) -> tuple[Any, ...]:
    """Rules or suppressions of two sources; suppressions numbered on, so each keeps its own
    number in what the report says matched nothing."""
    if later and isinstance(later[0], IgnoreEntry):
        later = tuple(replace(e, index=len(earlier) + i) for i, e in enumerate(later, start=1))
    return tuple(dict.fromkeys((*earlier, *later)))

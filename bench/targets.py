"""Performance targets: the measured value and the limit are stored, the verdict is derived."""

from __future__ import annotations

from dataclasses import dataclass

from measure import Measurement


@dataclass(frozen=True)
class Target:
    """One goal, e.g. 'inspect time / floor time <= 1.3' (unit 'x') or 'RSS - floor <= 30' (MiB)."""

    name: str
    value: float | None
    limit: float
    unit: str = "x"
    at_least: bool = False  # True: value must reach the limit (a speed-up), else stay under it
    note: str = ""
    subject: str = ""  # the input or model it was measured on
    sides: str = ""  # both sides of the ratio, e.g. "exportcheck 1.20 s / floor 1.00 s"
    rounds: tuple[float, ...] = ()  # the value in each round that ran both sides

    def meets(self, value: float) -> bool:
        return value >= self.limit if self.at_least else value <= self.limit

    @property
    def verdict(self) -> str:
        """PASS or MISS by the medians, unless the rounds disagree: then UNSETTLED, since on a
        noisy machine a median on one side of the limit says little when single rounds fall
        on both."""
        if self.value is None:
            return "N/A"
        met = sum(self.meets(v) for v in self.rounds)
        if len(self.rounds) > 1 and 0 < met < len(self.rounds):
            return "UNSETTLED"
        return "PASS" if self.meets(self.value) else "MISS"

    def _fmt(self, number: float) -> str:
        if self.unit == "MiB":
            return f"{number:+.1f} MiB"
        if self.unit == "s":
            return f"{number:.3f} s"
        return f"{number:.2f}x"

    def margin(self) -> str:
        """By how much it passes (headroom) or misses (shortfall), relative to the limit."""
        if self.value is None:
            return self.note or "not measured"
        sign = ">=" if self.at_least else "<="
        text = f"{self._fmt(self.value)} (target {sign} {self._fmt(self.limit)})"
        met = self.meets(self.value)
        if self.unit != "x":
            gap = abs(self.limit - self.value)
            text += f", {gap:.3g} {self.unit} {'headroom' if met else 'over'}"
        elif self.at_least:
            gap = abs(self.value / self.limit - 1) * 100
            text += f", {gap:.0f}% {'headroom' if met else 'short'}"
        elif met:
            text += f", {(1 - self.value / self.limit) * 100:.0f}% headroom"
        else:
            text += f", {self.value / self.limit:.2f}x over the limit"
        if len(self.rounds) > 1:
            low, high = min(self.rounds), max(self.rounds)
            within = sum(self.meets(v) for v in self.rounds)
            text += (
                f"; rounds {self._fmt(low)} to {self._fmt(high)}, "
                f"{within} of {len(self.rounds)} within"
            )
        if self.sides:
            text = f"{text} [{self.sides}]"
        return f"{text}; {self.note}" if self.note else text


def sides(first: Measurement, second: Measurement) -> str:
    """`label 1.234 s / label 0.567 s`: what a ratio was taken of."""

    def side(m: Measurement) -> str:
        value = f"{m.seconds:.3f} s" if m.seconds is not None else m.status
        return f"{m.command.label} {value}"

    return f"{side(first)} / {side(second)}"


def round_ratios(numerator: Measurement, denominator: Measurement) -> tuple[float, ...]:
    """numerator time / denominator time in each round in which both ran successfully: the
    commands run in turn, so a round's two runs met the same background load."""
    return tuple(
        a.seconds / b.seconds
        for a, b in zip(numerator.runs, denominator.runs)
        if a.returncode in numerator.command.ok_codes
        and b.returncode in denominator.command.ok_codes
        and b.seconds > 0
    )


def ratio(tool: Measurement, base: Measurement) -> float | None:
    """tool time / base time, when both have successful runs."""
    if tool.seconds is None or base.seconds is None or base.seconds <= 0:
        return None
    return tool.seconds / base.seconds


def time_target(
    subject: str,
    tool: Measurement,
    floor: Measurement,
    limit: float,
    what: str = "inspect",
    floor_label: bool = False,
) -> Target:
    note = "" if tool.seconds is not None else f"{tool.command.label}: {tool.status}"
    floor_name = f"the {floor.command.label}" if what == "inspect" or floor_label else "its floor"
    name = f"{what} time <= {limit}x {floor_name}, {subject}"
    return Target(
        name,
        ratio(tool, floor),
        limit,
        note=note,
        subject=subject,
        sides=sides(tool, floor),
        rounds=round_ratios(tool, floor),
    )


def memory_target(subject: str, tool: Measurement, floor: Measurement, limit_mib: float) -> Target:
    name = f"inspect peak RSS <= {floor.command.label} + {limit_mib:.0f} MiB, {subject}"
    if tool.rss_mib is None or floor.rss_mib is None:
        return Target(name, None, limit_mib, "MiB", note="not measured", subject=subject)
    return Target(name, tool.rss_mib - floor.rss_mib, limit_mib, "MiB", subject=subject)


def speedup_target(subject: str, tool: Measurement, anchor: Measurement, limit: float) -> Target:
    """How many times faster than the anchor; a timed-out anchor gives a lower bound."""
    name = f"inspect >= {limit:.0f}x faster than {anchor.command.label}, {subject}"
    value, note = None, f"{anchor.command.label}: {anchor.status}"
    rounds: tuple[float, ...] = ()
    if tool.seconds is None:
        note = f"{tool.command.label}: {tool.status}"
    elif anchor.seconds is not None:
        value, note = anchor.seconds / tool.seconds, ""
        rounds = round_ratios(anchor, tool)
    elif anchor.status == "timeout":
        value, note = anchor.command.timeout / tool.seconds, "anchor timed out: lower bound"
    return Target(
        name,
        value,
        limit,
        at_least=True,
        note=note,
        subject=subject,
        sides=sides(anchor, tool),
        rounds=rounds,
    )


def throughput_target(
    subject: str, parallel: Measurement, serial: Measurement, limit: float
) -> Target:
    """How many times the serial run's time the parallel run takes, inverted: a throughput."""
    name = f"{parallel.command.label} >= {limit:g}x the throughput of {serial.command.label}"
    value = None
    if parallel.seconds and serial.seconds is not None:
        value = serial.seconds / parallel.seconds
    note = "" if value is not None else f"{parallel.status} / {serial.status}"
    return Target(
        name,
        value,
        limit,
        at_least=True,
        note=note,
        subject=subject,
        sides=sides(serial, parallel),
        rounds=round_ratios(serial, parallel),
    )


def startup_target(tool: Measurement, base: Measurement, factor: float, slack_s: float) -> Target:
    """A command's start-up against `factor` x a bare interpreter's plus `slack_s` seconds."""
    label = base.command.label
    name = f"{tool.command.label} < {factor:g} x `{label}` + {slack_s:g} s"
    if tool.seconds is None or base.seconds is None:
        return Target(name, None, 0.0, "s", note="not measured", subject=tool.command.label)
    limit = factor * base.seconds + slack_s
    return Target(
        name, tool.seconds, limit, "s", subject=tool.command.label, sides=sides(tool, base)
    )

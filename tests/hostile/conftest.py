"""Fixtures for the hostile-input tests: real exported ONNX files, fuzz profiles, a case counter."""

from __future__ import annotations

import os
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings

# Profiles are only registered here; test_fuzz.py applies the chosen one to its own tests, so
# loading it never changes the hypothesis defaults of the rest of the suite.
_FUZZ_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile(
    "fast", max_examples=50, deadline=None, database=None, suppress_health_check=_FUZZ_HEALTH
)
settings.register_profile(
    "long", max_examples=3000, deadline=None, database=None, suppress_health_check=_FUZZ_HEALTH
)
FUZZ_PROFILE = os.environ.get("EXPORTCHECK_FUZZ_PROFILE", "fast")


@dataclass
class FuzzTally:
    """How many cases each fuzz test ran and how each ended; printed at the end of the run."""

    cases: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)

    def record(self, test: str, outcome: object) -> None:
        self.cases[test] += 1
        self.outcomes["findings" if isinstance(outcome, list) else type(outcome).__name__] += 1


_TALLY = pytest.StashKey[FuzzTally]()


@pytest.fixture(scope="session")
def fuzz_tally(pytestconfig: pytest.Config) -> FuzzTally:
    return pytestconfig.stash.setdefault(_TALLY, FuzzTally())


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    tally = config.stash.get(_TALLY, None)
    if tally is None or not tally.cases:
        return
    elapsed = time.monotonic() - tally.started
    per_test = ", ".join(f"{name} {count}" for name, count in sorted(tally.cases.items()))
    endings = ", ".join(f"{name} {count}" for name, count in tally.outcomes.most_common())
    terminalreporter.write_line(
        f"exportcheck fuzz ({FUZZ_PROFILE} profile): {tally.cases.total()} cases in "
        f"{elapsed:.0f} s ({per_test}); outcomes: {endings}"
    )


def _small_cnn():
    import torch
    from torch import nn

    class SmallCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.drop = nn.Dropout(0.5)
            self.fc = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.relu(self.bn(self.conv(x))).mean((2, 3))
            return self.fc(self.drop(x))

    torch.manual_seed(0)
    return SmallCNN().train(), (torch.randn(2, 3, 8, 8),)


class Seeds(dict):
    """The exported files by name; a short repr keeps hypothesis failure reports readable."""

    def __repr__(self) -> str:
        return f"<exported ONNX seeds: {', '.join(self)}>"


@pytest.fixture(scope="session")
def exported_onnx(tmp_path_factory: pytest.TempPathFactory) -> Seeds:
    """A train-mode CNN exported once per session, as the bytes of each ONNX file.

    `legacy`: the TorchScript-based exporter with TrainingMode.PRESERVE (BatchNormalization
    with running-stat outputs, Dropout with a constant training_mode). `dynamo`: the dynamo
    exporter, weights inlined. `dynamo-external`: the same graph still pointing at its side
    file, which is not copied next to the fuzzed files (a missing-external-data case).
    """
    import onnx
    import torch

    folder = tmp_path_factory.mktemp("exported")
    model, args = _small_cnn()
    legacy = folder / "legacy.onnx"
    dynamo = folder / "dynamo.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # both exporters warn about the train-mode export
        torch.onnx.export(
            model, args, str(legacy), dynamo=False, training=torch.onnx.TrainingMode.PRESERVE
        )
        torch.onnx.export(model, args, str(dynamo), dynamo=True, verbose=False)
    external = onnx.load_model(str(dynamo), load_external_data=False)
    inline = onnx.load_model(str(dynamo), load_external_data=True)
    return Seeds(
        legacy=legacy.read_bytes(),
        dynamo=inline.SerializeToString(),
        **{"dynamo-external": external.SerializeToString()},
    )

"""The rule catalogue: one explicit tuple, looked up by slug or code."""

from __future__ import annotations

from exportcheck.results.catalogue import RuleDescriptor
from exportcheck.rules.base import Hit, Rule
from exportcheck.rules.batch_dependent_eval import BatchDependentEval
from exportcheck.rules.dynamic_dropout_mode import DynamicDropoutMode
from exportcheck.rules.first_divergence import FirstDivergence
from exportcheck.rules.missing_external_data import MissingExternalData
from exportcheck.rules.mode_dependent_module import ModeDependentModule
from exportcheck.rules.nondeterministic_eval import NondeterministicEval
from exportcheck.rules.nonfinite_output import NonfiniteOutput
from exportcheck.rules.noop_dropout import NoopDropout
from exportcheck.rules.output_mismatch import OutputMismatch
from exportcheck.rules.random_op import RandomOp
from exportcheck.rules.runtime_batch_statistics import RuntimeBatchStatistics
from exportcheck.rules.runtime_nondeterminism import RuntimeNondeterminism
from exportcheck.rules.runtime_refusal import RuntimeRefusal
from exportcheck.rules.specialised_dimension import SpecialisedDimension
from exportcheck.rules.stale_batchnorm_stats import StaleBatchNormStats
from exportcheck.rules.submodule_left_training import SubmoduleLeftTraining
from exportcheck.rules.training_batchnorm import TrainingBatchNorm
from exportcheck.rules.training_dropout import TrainingDropout
from exportcheck.rules.training_module import TrainingModule
from exportcheck.rules.unsafe_archive_content import UnsafeArchiveContent

RULES: tuple[type[Rule], ...] = (
    TrainingDropout,
    TrainingBatchNorm,
    RandomOp,
    TrainingModule,
    DynamicDropoutMode,
    NoopDropout,
    MissingExternalData,
    UnsafeArchiveContent,
    SubmoduleLeftTraining,
    ModeDependentModule,
    StaleBatchNormStats,
    NondeterministicEval,
    BatchDependentEval,
    OutputMismatch,
    RuntimeNondeterminism,
    NonfiniteOutput,
    RuntimeRefusal,
    SpecialisedDimension,
    RuntimeBatchStatistics,
    FirstDivergence,
)

_BY_KEY: dict[str, type[Rule]] = {}
for _rule in RULES:
    _BY_KEY[_rule.slug] = _rule
    _BY_KEY[_rule.code.lower()] = _rule


def get_rule(key: str) -> type[Rule]:
    """The rule with this slug or code; KeyError with the choices otherwise."""
    try:
        return _BY_KEY[key.strip().lower()]
    except KeyError:
        raise KeyError(f"unknown rule {key!r}; `exportcheck rules` lists them") from None


def rule_descriptors() -> tuple[RuleDescriptor, ...]:
    """The whole catalogue as data, for reports and listings."""
    return tuple(rule.descriptor() for rule in RULES)


def graph_rules() -> tuple[Rule, ...]:
    """Instances of the rules that read artifact graphs (the `inspect` stage)."""
    return tuple(rule() for rule in RULES if rule.stage == "inspect")


__all__ = ["RULES", "FirstDivergence", "Hit", "Rule", "get_rule", "graph_rules", "rule_descriptors"]

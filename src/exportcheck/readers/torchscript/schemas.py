"""Positional argument names of the operators the rules read, pinned from torch's schemas.

TorchScript code passes operator arguments by position; the rules read them by name. Without
torch at hand the names come from this table; a test checks it against torch's registered
schemas (`torch._C._jit_get_schemas_for_operator`). Several overloads share a name: `pick`
chooses by the arguments at the call.
"""

from __future__ import annotations

from collections.abc import Sequence

_DROPOUT = (("input", "p", "train"),)
_DROPOUT_ = (("self", "p", "train"),)
_BATCH_NORM_8 = (
    "input",
    "weight",
    "bias",
    "running_mean",
    "running_var",
    "training",
    "momentum",
    "eps",
)
_RECURRENT = (
    (
        "input",
        "hx",
        "params",
        "has_biases",
        "num_layers",
        "dropout",
        "train",
        "bidirectional",
        "batch_first",
    ),
    (
        "data",
        "batch_sizes",
        "hx",
        "params",
        "has_biases",
        "num_layers",
        "dropout",
        "train",
        "bidirectional",
    ),
)
_RNN_CELL = (
    (
        "input",
        "hx",
        "params",
        "has_biases",
        "num_layers",
        "dropout",
        "train",
        "bidirectional",
        "batch_first",
    ),
    (
        "data",
        "batch_sizes",
        "hx",
        "params",
        "has_biases",
        "num_layers",
        "dropout",
        "train",
        "bidirectional",
    ),
)

SCHEMAS: dict[str, tuple[tuple[str, ...], ...]] = {
    "aten::dropout": _DROPOUT,
    "aten::feature_dropout": _DROPOUT,
    "aten::alpha_dropout": _DROPOUT,
    "aten::feature_alpha_dropout": _DROPOUT,
    "aten::native_dropout": _DROPOUT,
    "aten::dropout_": _DROPOUT_,
    "aten::feature_dropout_": _DROPOUT_,
    "aten::alpha_dropout_": _DROPOUT_,
    "aten::feature_alpha_dropout_": _DROPOUT_,
    "aten::batch_norm": (_BATCH_NORM_8 + ("cudnn_enabled",),),
    "aten::native_batch_norm": (_BATCH_NORM_8,),
    "aten::_native_batch_norm_legit": (
        _BATCH_NORM_8,
        ("input", "weight", "bias", "training", "momentum", "eps"),
    ),
    "aten::_native_batch_norm_legit_functional": (_BATCH_NORM_8,),
    "aten::cudnn_batch_norm": (
        (
            "input",
            "weight",
            "bias",
            "running_mean",
            "running_var",
            "training",
            "exponential_average_factor",
            "epsilon",
        ),
    ),
    "aten::miopen_batch_norm": (
        (
            "input",
            "weight",
            "bias",
            "running_mean",
            "running_var",
            "training",
            "exponential_average_factor",
            "epsilon",
        ),
    ),
    "aten::_batch_norm_with_update": (
        ("input", "weight", "bias", "running_mean", "running_var", "momentum", "eps"),
    ),
    "aten::_batch_norm_with_update_functional": (
        ("input", "weight", "bias", "running_mean", "running_var", "momentum", "eps"),
    ),
    "aten::instance_norm": (
        (
            "input",
            "weight",
            "bias",
            "running_mean",
            "running_var",
            "use_input_stats",
            "momentum",
            "eps",
            "cudnn_enabled",
        ),
    ),
    "aten::lstm": _RECURRENT,
    "aten::gru": _RNN_CELL,
    "aten::rnn_tanh": _RNN_CELL,
    "aten::rnn_relu": _RNN_CELL,
    "aten::bernoulli": (("self",), ("self", "p")),
    "aten::bernoulli_": (("self", "p"),),
    "aten::rand_like": (("self",),),
    "aten::randn_like": (("self",),),
    "aten::multinomial": (("self", "num_samples", "replacement"),),
    "aten::uniform_": (("self", "from", "to"),),
    "aten::normal_": (("self", "mean", "std"),),
    "aten::exponential_": (("self", "lambd"),),
    "aten::poisson": (("self", "generator"),),
}


def pick(op: str, positional: Sequence[object], is_bool_constant: object) -> tuple[str, ...]:
    """The names of an operator's positional arguments at one call; () when not in the table.

    `is_bool_constant(value)` says whether an argument is a constant bool: the recurrent ops'
    overloads differ in whether the fourth argument is `has_biases` (a bool) or `params`.
    """
    overloads = SCHEMAS.get(op)
    if not overloads:
        return ()
    if len(overloads) == 1:
        return overloads[0]
    if op in ("aten::lstm", "aten::gru", "aten::rnn_tanh", "aten::rnn_relu"):
        return (
            overloads[0]
            if len(positional) > 3 and is_bool_constant(positional[3])
            else overloads[1]
        )
    fitting = [names for names in overloads if len(names) == len(positional)]
    return fitting[0] if fitting else overloads[0]

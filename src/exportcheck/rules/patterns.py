"""Graph patterns several rules share: dropout decomposed into a random mask."""

from __future__ import annotations

from exportcheck.readers.view import NodeView

RANDOM_OPS = frozenset(
    {
        "RandomNormal",
        "RandomUniform",
        "RandomNormalLike",
        "RandomUniformLike",
        "Bernoulli",
        "Multinomial",
        "aten::bernoulli",
        "aten::bernoulli_",
        "aten::rand",
        "aten::randn",
        "aten::rand_like",
        "aten::randn_like",
        "aten::randint",
        "aten::randint_like",
        "aten::randperm",
        "aten::multinomial",
        "aten::normal",
        "aten::normal_",
        "aten::uniform",
        "aten::uniform_",
        "aten::exponential_",
        "aten::poisson",
    }
)

_COMPARISONS = frozenset(
    {
        "Less",
        "Greater",
        "LessOrEqual",
        "GreaterOrEqual",
        "aten::lt",
        "aten::gt",
        "aten::le",
        "aten::ge",
    }
)
_BERNOULLI = frozenset({"Bernoulli", "aten::bernoulli", "aten::bernoulli_"})
_PASS_THROUGH = frozenset(
    {
        "Cast",
        "Not",
        "Div",
        "aten::to",
        "aten::_to_copy",
        "aten::div",
        "aten::div_",
        "aten::logical_not",
        "aten::type_as",
        "aten::expand",
        "Expand",
        "Mul",
        "aten::mul",
        "aten::mul_",
    }
)
_SINKS = frozenset({"Mul", "Where", "aten::mul", "aten::mul_", "aten::where"})
_MAX_DEPTH = 6


def dropout_mask_path(node: NodeView) -> list[str] | None:
    """The op chain when a random op's output is thresholded into a mask that scales data.

    `RandomUniformLike -> Less -> Cast -> Div -> Mul` is how exporters spell a train-mode
    dropout they decomposed; a Bernoulli sample multiplied into data is the same thing.
    """
    if node.graph is None or node.op not in RANDOM_OPS:
        return None
    start = [node.op]
    frontier: list[tuple[NodeView, list[str], bool]] = [(node, start, node.op in _BERNOULLI)]
    seen: set[str] = set()
    for _ in range(_MAX_DEPTH):
        following: list[tuple[NodeView, list[str], bool]] = []
        for current, path, thresholded in frontier:
            for value in current.outputs:
                for consumer in node.graph.consumers(value):
                    if consumer.name in seen:
                        continue
                    seen.add(consumer.name)
                    chain = [*path, consumer.op]
                    masked = thresholded or consumer.op in _COMPARISONS
                    if masked and consumer.op in _SINKS and (len(chain) >= 3 or thresholded):
                        return chain
                    if consumer.op in _COMPARISONS or consumer.op in _PASS_THROUGH:
                        following.append((consumer, chain, masked))
        if not following:
            return None
        frontier = following
    return None

"""A dimension the artifact declares dynamic breaks at another size (`specialised-dimension`).

What it finds
    An artifact that matches the eval-mode model at the example size of a dimension it
    declares dynamic (an ONNX symbolic dimension, a torch.export range constraint), and fails
    or differs at another valid size of that dimension. The message names the dimension and
    the size. Typically an export that turned a size into a constant: `int(x.shape[1])`, a
    Python loop over a dimension, or a slice of a buffer by a traced size.

Why it is wrong
    The artifact promises every size in the range and computes the right answer for one. It
    passes every check made at the example shape and fails in production at the next
    sentence length or image size.

How to fix
    Keep sizes symbolic in `forward` (`x.shape[1]` without `int()`, `torch.arange(x.size(1))`),
    or declare the dimension static when the model only works at one size.
"""

from __future__ import annotations

from exportcheck.results.findings import Severity
from exportcheck.rules.base import Rule


class SpecialisedDimension(Rule):
    slug = "specialised-dimension"
    code = "EC305"
    severity = Severity.ERROR
    stage = "compare"
    summary = "A dimension declared dynamic fails or differs at another size"

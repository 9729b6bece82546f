"""What a rule is: identity (slug, code, severity), documentation, and the nodes it looks at."""

from __future__ import annotations

import inspect as _inspect
import sys
from collections.abc import Iterable, Iterator
from typing import ClassVar, NamedTuple

from exportcheck.readers.view import ArtifactView, NodeView
from exportcheck.results.findings import Severity

DOC_SECTIONS = ("What it finds", "Why it is wrong", "How to fix")


class Hit(NamedTuple):
    """One place a rule matched, before it becomes a Finding with subject and location (a
    named tuple: a large graph makes tens of thousands, and a frozen dataclass costs 3x)."""

    message: str
    node: NodeView | None = None
    scope: str | None = None
    module: str | None = None
    op_type: str | None = None
    node_name: str | None = None
    severity: Severity | None = None


class Rule:
    """A rule: class data says who it is; `check_node`/`check_artifact` say what it matches.

    Rules that judge a model's behaviour rather than a graph (audit, probes, comparisons) have
    no `ops` and no checks: the step that measures emits their findings, and the rule carries
    the identity and documentation those findings share.
    """

    slug: ClassVar[str]
    code: ClassVar[str]
    severity: ClassVar[Severity]
    summary: ClassVar[str]
    stage: ClassVar[str] = "inspect"
    ops: ClassVar[frozenset[str]] = frozenset()

    def check_node(self, node: NodeView) -> Iterable[Hit]:
        return ()

    def check_artifact(self, view: ArtifactView) -> Iterator[Hit]:
        return iter(())

    @classmethod
    def doc(cls) -> str:
        module_doc = sys.modules[cls.__module__].__doc__ or ""
        return _inspect.cleandoc(module_doc)

    @classmethod
    def missing_sections(cls) -> list[str]:
        text = cls.doc()
        return [section for section in DOC_SECTIONS if f"{section}\n" not in text + "\n"]

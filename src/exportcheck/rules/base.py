"""What a rule is: identity (slug, code, severity), documentation, and the nodes it looks at."""

from __future__ import annotations

import inspect as _inspect
import sys
from collections.abc import Iterable, Iterator
from typing import ClassVar, NamedTuple

from exportcheck.readers.view import ArtifactView, NodeView
from exportcheck.results.catalogue import DOC_SECTIONS, RuleDescriptor
from exportcheck.results.findings import Finding, Location, Severity


class Hit(NamedTuple):
    """One place a rule matched, before it becomes a Finding with subject and location (a
    named tuple: a large graph makes tens of thousands, and a frozen dataclass costs 3x)."""

    message: str
    node: NodeView | None = None
    scope: str | None = None
    module: str | None = None
    module_type: str | None = None
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
    def finding(
        cls,
        message: str,
        subject: str,
        location: Location | None = None,
        severity: Severity | None = None,
    ) -> Finding:
        """The one way a finding is made: this rule's identity, its default severity unless
        a hit or a measurement says otherwise, what was found and where."""
        return Finding(
            cls.slug,
            cls.code,
            severity or cls.severity,
            message,
            subject,
            location if location is not None else Location(),
            None,
            cls.stage,
        )

    @classmethod
    def finding_for_hit(cls, hit: Hit, artifact: str, subject: str) -> Finding:
        """A graph rule's hit as a finding located in its artifact, and at the node's source
        line where its reader knows it."""
        node = hit.node
        if node is None:
            location = Location(
                artifact, hit.scope, hit.node_name, None, hit.module, hit.module_type
            )
        else:
            location = Location(
                artifact,
                node.scope,
                node.name,
                node.op,
                node.module or hit.module,
                hit.module_type,
                source_file=node.source_file,
                source_line=node.source_line,
            )
        return cls.finding(hit.message, subject, location, hit.severity)

    @classmethod
    def descriptor(cls) -> RuleDescriptor:
        return RuleDescriptor(
            cls.slug, cls.code, cls.__name__, cls.severity, cls.stage, cls.summary, cls.doc()
        )

    @classmethod
    def doc(cls) -> str:
        module_doc = sys.modules[cls.__module__].__doc__ or ""
        return _inspect.cleandoc(module_doc)

    @classmethod
    def missing_sections(cls) -> list[str]:
        text = cls.doc()
        return [section for section in DOC_SECTIONS if f"{section}\n" not in text + "\n"]

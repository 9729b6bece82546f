"""The uniform view every reader produces and every rule reads: nodes, their arguments, scopes."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any


class ArtifactKind(str, enum.Enum):
    ONNX = "onnx"
    TORCHSCRIPT = "torchscript"
    EXPORTED_PROGRAM = "exported-program"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Arg:
    """One operator argument: a constant the reader could resolve, or where a dynamic one comes from."""

    value: Any = None
    constant: bool = False
    source: str | None = None

    @classmethod
    def const(cls, value: Any, source: str | None = None) -> Arg:
        return cls(value=value, constant=True, source=source)

    @classmethod
    def dynamic(cls, source: str) -> Arg:
        return cls(source=source)

    def truthy(self) -> bool | None:
        """True/False for a scalar constant; None when it is only known at run time or is not
        a scalar (a malformed graph)."""
        return self._truth

    @cached_property
    def _truth(self) -> bool | None:
        # Readers share one Arg among every node reading the same constant, so it is judged once.
        if not self.constant:
            return None
        value = self.value
        if hasattr(value, "item") and hasattr(value, "size"):
            if value.size != 1:
                return None
            value = value.item()
        elif isinstance(value, (list, tuple)):
            return None
        try:
            return bool(value)
        except (TypeError, ValueError):
            return None


class NodeView:
    """One operator in one scope of an artifact, with arguments read by schema name.

    A reader may subclass it to read `inputs`, `outputs`, `module` or the source location on
    first use (the ONNX and TorchScript readers do): a graph with a million nodes and tens of thousands of matches then pays only
    for what rules read.
    """

    __slots__ = (
        "kind",
        "scope",
        "name",
        "op",
        "_inputs",
        "_outputs",
        "args",
        "_module",
        "graph",
        "_source_file",
        "_source_line",
    )

    def __init__(
        self,
        kind: ArtifactKind,
        scope: str,
        name: str,
        op: str,
        inputs: tuple[str, ...],
        outputs: tuple[str, ...],
        args: Mapping[str, Arg] | None = None,
        module: str | None = None,
        graph: GraphIndex | None = None,
        source_file: str | None = None,
        source_line: int | None = None,
    ) -> None:
        self.kind = kind
        self.scope = scope
        self.name = name
        self.op = op
        self._inputs = inputs
        self._outputs = outputs
        self.args: Mapping[str, Arg] = args if args is not None else {}
        self._module = module
        self.graph = graph
        self._source_file = source_file
        self._source_line = source_line

    @property
    def inputs(self) -> tuple[str, ...]:
        return self._inputs

    @property
    def outputs(self) -> tuple[str, ...]:
        return self._outputs

    @property
    def module(self) -> str | None:
        return self._module

    @property
    def source_file(self) -> str | None:
        """The user's source file that made this node, where the artifact records it."""
        return self._source_file

    @property
    def source_line(self) -> int | None:
        return self._source_line

    @property
    def reads_enclosing_scope(self) -> bool:
        """Whether the node holds subgraphs that may read values of its scope beyond `inputs`
        (an ONNX If or Loop body reads outer values by name)."""
        return False

    def arg(self, name: str) -> Arg | None:
        return self.args.get(name)

    def input_arg(self, index: int) -> Arg | None:
        """The argument that the input at `index` binds, whatever its schema name."""
        if index >= len(self.inputs):
            return None
        value = self.inputs[index]
        for arg in self.args.values():
            if (arg.source or "").endswith((f"'{value}'", f"%{value}", f" {value}")):
                return arg
        return None

    def __repr__(self) -> str:
        return f"NodeView({self.kind.value} {self.scope}::{self.name} {self.op})"


class GraphIndex(ABC):
    """Producer/consumer lookup inside one scope, as a reader provides it.

    The views an index returns carry no index of their own (`graph` is None): the matched node
    a walk starts from holds the index, and the index never points back at it, so a reader's
    objects form no reference cycle and are freed as soon as the view is dropped. A walk
    passes the node it stands on as `consumer`.
    """

    scope: str

    @abstractmethod
    def producer(self, value: str, consumer: NodeView | None = None) -> NodeView | None:
        """The node computing `value`, or None for a value no node of the scope computes."""

    @abstractmethod
    def consumers(self, value: str) -> list[NodeView]:
        """The nodes of the scope reading `value`."""


class NodeListIndex(GraphIndex):
    """A GraphIndex over the scope's views, built on first use from a node source."""

    def __init__(self, scope: str, build_nodes: Callable[[], Sequence[NodeView]]) -> None:
        self.scope = scope
        self._build_nodes: Callable[[], Sequence[NodeView]] | None = build_nodes
        self._consumers: dict[str, list[NodeView]] | None = None
        self._producers: dict[str, NodeView] | None = None

    def _index(self) -> None:
        consumers: dict[str, list[NodeView]] = {}
        producers: dict[str, NodeView] = {}
        build_nodes, self._build_nodes = self._build_nodes, None
        assert build_nodes is not None
        for node in build_nodes():
            for value in node.inputs:
                if value:
                    consumers.setdefault(value, []).append(node)
            for value in node.outputs:
                if value:
                    producers[value] = node
        self._consumers, self._producers = consumers, producers

    def consumers(self, value: str) -> list[NodeView]:
        if self._consumers is None:
            self._index()
        assert self._consumers is not None
        return self._consumers.get(value, [])

    def producer(self, value: str, consumer: NodeView | None = None) -> NodeView | None:
        if self._producers is None:
            self._index()
        assert self._producers is not None
        return self._producers.get(value)


@dataclass(frozen=True)
class ModuleFlag:
    """A submodule saved in an artifact, with its `training` flag."""

    path: str
    type_name: str
    training: bool
    reads_training: bool = True
    """Whether the module may compute differently by its flag: False only for one of torch's
    own classes whose saved code never reads it; True where a reader cannot tell."""


@dataclass(frozen=True)
class Note:
    """Something a reader saw that is not a rule's business (a missing weight file, say)."""

    code: str
    message: str
    scope: str | None = None


@dataclass(frozen=True)
class UnsafeContent:
    """Archive content a loader would execute or misplace (a foreign pickle global, a native
    library, a path escape); the reader saw it without acting on it."""

    member: str
    reason: str


@dataclass(frozen=True)
class ArtifactView:
    """What a reader hands the rules: the nodes they asked for, module flags, buffers, notes."""

    path: str
    kind: ArtifactKind
    nodes: tuple[NodeView, ...]
    modules: tuple[ModuleFlag, ...] = ()
    mutated_buffers: tuple[str, ...] = ()
    notes: tuple[Note, ...] = ()
    node_count: int = 0
    scope_count: int = 1
    unsafe_content: tuple[UnsafeContent, ...] = ()

"""Abstract interpretation of TorchScript code: inlines calls, folds flags, follows live branches.

The archive's `code/**.py` is the TorchScript the compiler printed. Each root method is walked
statement by statement with `self` bound to the module record from data.pkl, so `self.training`
is that module's saved flag. Calls to compiled functions and submodule methods are inlined with
their arguments bound; `if` on a folded condition walks only the branch taken; an operator call
becomes a node with its positional arguments named from the pinned schema table.
Nothing is executed: values are constants, graph values, module references or unknowns.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from exportcheck.readers.restricted_pickle import Record, TensorRecord
from exportcheck.readers.torchscript.code import (
    ClassCode,
    Function,
    InterpretError,
    Origin,
    ParsedFile,
)
from exportcheck.readers.torchscript.schemas import pick
from exportcheck.readers.torchscript.sources import CallStack, CodePosition
from exportcheck.readers.view import Arg

MAX_CALL_DEPTH = 200
# Work is counted in evaluated expressions (inlined calls included), environment entries copied
# or merged at branches, and elements of constants folded: the units that grow with inlining.
# An inlined call and an operator node cost more (a frame, a node kept until the end). A
# scripted 24-layer Transformer takes about 1.3 million.
MAX_WORK = 4_000_000
_CALL_WORK = 64
_NODE_WORK = 16
# A folded constant: an int of more bits, or a string or (nested) tuple of more elements, is
# refused before it is computed.
MAX_INT_BITS = 4096
MAX_CONSTANT_SIZE = 1_000_000


@dataclass(frozen=True, slots=True)
class Const:
    value: Any
    source: str = "constant"


@dataclass(frozen=True, slots=True)
class Value:
    """A graph value: an operator's output, a method input, a parameter or buffer."""

    name: str
    source: str


@dataclass(frozen=True, slots=True)
class Unknown:
    source: str


@dataclass(frozen=True, slots=True)
class ModuleRef:
    path: str
    record: Record


@dataclass(frozen=True, slots=True)
class FunctionRef:
    qualified: str


@dataclass(frozen=True, slots=True)
class Seq:
    items: tuple[Any, ...]


@dataclass(slots=True)
class RawNode:
    op: str
    scope: str
    positional: tuple[Any, ...]
    keywords: dict[str, Any]
    outputs: list[str]
    module: str
    index: int
    # Where the call sits in the archive's code, and the calls that inlined it.
    location: CallStack = None


class _Return(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


class _Raised(Exception):
    """The path reached `ops.prim.RaiseException`: nothing after it runs."""


_FOLD: dict[str, Callable[..., Any]] = {
    "aten::__not__": operator.not_,
    "aten::__is__": operator.is_,
    "aten::__isnot__": operator.is_not,
    "aten::eq": operator.eq,
    "aten::ne": operator.ne,
    "aten::lt": operator.lt,
    "aten::gt": operator.gt,
    "aten::le": operator.le,
    "aten::ge": operator.ge,
    "aten::add": operator.add,
    "aten::sub": operator.sub,
    "aten::mul": operator.mul,
    "aten::neg": operator.neg,
    "aten::__and__": operator.and_,
    "aten::__or__": operator.or_,
    "aten::Bool": bool,
    "aten::Int": int,
    "aten::Float": float,
}
_FOLDABLE_TYPES = (bool, int, float, str, type(None))
_MISSING = object()
_SHORT = 4096
_TRANSPARENT_BUILTINS = frozenset({"annotate", "unchecked_cast"})


@dataclass
class CodeIndex:
    """Classes and functions of an archive's code, by qualified name."""

    classes: dict[str, ClassCode] = field(default_factory=dict)
    functions: dict[str, Function] = field(default_factory=dict)
    _constants: dict[tuple[str, str], Const | None] = field(default_factory=dict)

    def add(self, qualifier: str, parsed: ParsedFile) -> None:
        for cls in parsed.classes:
            self.classes[f"{qualifier}.{cls.name}"] = cls
        for name, function in parsed.functions.items():
            self.functions[f"{qualifier}.{name}"] = function

    def method(self, qualified_class: str, name: str) -> Function | None:
        cls = self.classes.get(qualified_class)
        return cls.methods.get(name) if cls is not None else None

    def class_constant(self, qualified_class: str, name: str) -> Const | None:
        key = (qualified_class, name)
        if key not in self._constants:
            cls = self.classes.get(qualified_class)
            # `(conv).forward(x)` asks for `forward` first: a method is no constant, and
            # the class attributes are parsed only for a name that may be one.
            expression = None
            if cls is not None and name not in cls.methods:
                expression = cls.constant(name)
            self._constants[key] = _literal(expression) if expression is not None else None
        return self._constants[key]


def _literal(node: ast.expr) -> Any:
    try:
        return Const(ast.literal_eval(node))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def dotted(node: ast.expr) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def op_name(name: str) -> str | None:
    """`aten::dropout` for `torch.dropout`, `prim::X` for `ops.prim.X`."""
    parts = name.split(".")
    if len(parts) == 2 and parts[0] == "torch":
        return f"aten::{parts[1]}"
    if len(parts) == 3 and parts[0] == "ops":
        return f"{parts[1]}::{parts[2]}"
    return None


def _foldable_size(value: Any) -> bool:
    """A saved int or string small enough to fold and to print."""
    if type(value) is int:
        return value.bit_length() <= MAX_INT_BITS
    return type(value) is not str or len(value) <= MAX_CONSTANT_SIZE


def _same(left: Any, right: Any) -> bool:
    """Equal values, compared without walking long constants or lists (those are the same
    only when they are one object)."""
    if left is right:
        return True
    if type(left) is not type(right) or type(left) is Seq:
        return False
    if type(left) is Const:
        values = (left.value, right.value)
        if values[0] is not values[1] and (
            type(values[0]) in (tuple, list) or (type(values[0]) is str and len(values[0]) > _SHORT)
        ):
            return False
    return left == right


def _is_bool_constant(value: Any) -> bool:
    return isinstance(value, Const) and isinstance(value.value, bool)


class Interpreter:
    """Walks methods of one archive, collecting the operator nodes that run."""

    def __init__(self, code: CodeIndex, constants: Sequence[Any]) -> None:
        self.code = code
        self.constants = constants
        self.nodes: list[RawNode] = []
        self.work = 0
        self.dead_branches = 0
        # Record.attributes builds a dict per call; the records outlive the interpreter.
        self._attributes: dict[int, dict[str, Any]] = {}
        self._names: dict[int, tuple[str | None, str | None]] = {}
        self._literals: dict[int, Const] = {}  # one Const per literal: values are immutable
        # Sizes of the tuples and lists met, by id (with the object, which keeps the id valid).
        self._sizes: dict[int, tuple[Any, int]] = {}

    # --- entry -------------------------------------------------------------------------
    def run_method(self, root: Record, method: Function, scope: str) -> None:
        env: dict[str, Any] = {}
        params = method.tree.args.args
        if params:
            env[params[0].arg] = ModuleRef("", root)
        for param in params[1:]:
            env[param.arg] = Value(f"%{param.arg}", f"method input %{param.arg}")
        frame = _Frame(env, "", scope, 0, method.origin)
        try:
            self._block(method.tree.body, frame)
        except (_Return, _Raised):
            pass

    def charge(self, units: int) -> None:
        self.work += units
        if self.work > MAX_WORK:
            raise InterpretError(
                f"code takes more than {MAX_WORK} steps to read when inlined (expressions "
                "evaluated, names carried through branches, constant elements folded)"
            )

    def size(self, value: Any) -> int:
        """Elements in a constant or list, nested ones and string characters counted; ints
        and floats count one. Past MAX_CONSTANT_SIZE the count stops."""
        kind = type(value)
        if kind is str:
            return len(value) + 1
        if kind is Seq:
            value = value.items
        elif kind is Const:
            value = value.value
        if type(value) not in (tuple, list):
            return 1
        known = self._sizes.get(id(value))
        if known is not None and known[0] is value:
            return known[1]
        total = 1
        for item in value:
            total += self.size(item)
            if total > MAX_CONSTANT_SIZE:
                break
        self._sizes[id(value)] = (value, total)
        return total

    def checked(self, value: Any) -> Any:
        """`value` (a Const or Seq) if it is within the size budget."""
        inner = value.value if type(value) is Const else None
        if type(inner) is int and inner.bit_length() > MAX_INT_BITS:
            raise InterpretError(f"a folded integer has more than {MAX_INT_BITS} bits")
        if self.size(value) > MAX_CONSTANT_SIZE:
            raise InterpretError(
                f"a folded constant or list has more than {MAX_CONSTANT_SIZE} elements"
            )
        return value

    # --- statements --------------------------------------------------------------------
    def _block(self, statements: list[ast.stmt], frame: _Frame) -> None:
        for statement in statements:
            self.charge(1)
            if type(statement) is ast.Assign and len(statement.targets) == 1:
                target = statement.targets[0]
                if type(target) is ast.Name:
                    # Most printed statements are `name = expression`.
                    frame.env[target.id] = self._expr(statement.value, frame)
                    continue
            self._statement(statement, frame)

    def _statement(self, statement: ast.stmt, frame: _Frame) -> None:
        if isinstance(statement, ast.Assign):
            value = self._expr(statement.value, frame)
            for target in statement.targets:
                self._assign(target, value, frame)
        elif isinstance(statement, ast.AnnAssign):
            if statement.value is not None:
                self._assign(statement.target, self._expr(statement.value, frame), frame)
        elif isinstance(statement, ast.AugAssign):
            self._expr(statement.value, frame)
            self._assign(statement.target, Unknown("augmented assignment"), frame)
        elif isinstance(statement, ast.Expr):
            self._expr(statement.value, frame)
        elif isinstance(statement, ast.Return):
            raise _Return(self._expr(statement.value, frame) if statement.value else Const(None))
        elif isinstance(statement, ast.If):
            self._if(statement, frame)
        elif isinstance(statement, (ast.For, ast.While)):
            self._loop(statement, frame)
        elif isinstance(statement, ast.With):
            for item in statement.items:
                self._expr(item.context_expr, frame)
            self._block(statement.body, frame)
        elif isinstance(statement, (ast.Pass, ast.Break, ast.Continue)):
            return
        elif isinstance(statement, ast.Assert):
            self._expr(statement.test, frame)
        elif isinstance(statement, (ast.Global, ast.Nonlocal, ast.Import, ast.ImportFrom)):
            return
        else:
            raise InterpretError(f"a {type(statement).__name__} statement is not TorchScript")

    def _assign(self, target: ast.expr, value: Any, frame: _Frame) -> None:
        if isinstance(target, ast.Name):
            frame.env[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)):
            for position, element in enumerate(target.elts):
                self._assign(element, self._element(value, position), frame)
        # Subscript and attribute targets change containers/objects the rules never read.

    def _element(self, value: Any, position: int) -> Any:
        if isinstance(value, Seq) and position < len(value.items):
            return value.items[position]
        if isinstance(value, Const) and isinstance(value.value, (tuple, list)):
            if position < len(value.value):
                return Const(value.value[position], value.source)
        if isinstance(value, Value):
            node = self._producer(value)
            name = f"{value.name}.{position}"
            if node is not None and name not in node.outputs:
                node.outputs.append(name)
            return Value(name, f"output {position} of {value.source}")
        return Unknown(f"element {position} of a value known only at run time")

    def _producer(self, value: Value) -> RawNode | None:
        for node in reversed(self.nodes[-64:]):
            if node.outputs and node.outputs[0] == value.name:
                return node
        return None

    def _if(self, statement: ast.If, frame: _Frame) -> None:
        condition = self._expr(statement.test, frame)
        if isinstance(condition, Const):
            try:
                taken = bool(condition.value)
            except Exception:  # a constant of a type without truth value
                taken = None
            if taken is not None:
                self.dead_branches += 1
                self._block(statement.body if taken else statement.orelse, frame)
                return
        source = getattr(condition, "source", "a value known only at run time")
        merged: dict[str, Any] = {}
        survivors: list[dict[str, Any]] = []
        for position, body in enumerate((statement.body, statement.orelse)):
            self.charge(len(frame))
            branch = frame.child(f"{frame.scope}/prim::If.block{position}")
            try:
                self._block(body, branch)
            except _Raised:
                continue
            except _Return:
                if position == 1 and not survivors:
                    raise
                continue
            survivors.append(branch.env)
        if not survivors:
            raise _Raised()
        for env in survivors:
            self.charge(len(env))
            for name, value in env.items():
                if name in merged and not _same(merged[name], value):
                    merged[name] = Unknown(f"branch on {source}")
                else:
                    merged.setdefault(name, value)
        frame.env.update(merged)

    def _loop(self, statement: ast.For | ast.While, frame: _Frame) -> None:
        if isinstance(statement, ast.For):
            self._expr(statement.iter, frame)
            self._assign(statement.target, Unknown("loop variable"), frame)
        else:
            self._expr(statement.test, frame)
        self.charge(2 * len(frame))
        body = frame.child(f"{frame.scope}/prim::Loop.block0")
        try:
            self._block(statement.body, body)
        except (_Raised, _Return):
            return
        for name, value in body.env.items():
            if not _same(frame.env.get(name), value):
                frame.env[name] = Unknown("value carried by a loop")

    # --- expressions -------------------------------------------------------------------
    def _expr(self, node: ast.expr, frame: _Frame) -> Any:
        self.work += 1
        if self.work > MAX_WORK:
            self.charge(0)
        kind = type(node)
        if kind is ast.Name:
            value = frame.env.get(node.id, _MISSING)
            if value is not _MISSING:
                return value
        elif kind is ast.Call:
            return self._call(node, frame)  # type: ignore[arg-type]
        elif kind is ast.Attribute:
            return self._attribute(node, frame)  # type: ignore[arg-type]
        if isinstance(node, ast.Constant):
            constant = self._literals.get(id(node))
            if constant is None:
                constant = self._literals[id(node)] = Const(node.value)
            return constant
        if isinstance(node, ast.Name):
            if node.id in frame.env:
                return frame.env[node.id]
            if node.id in ("True", "False", "None"):
                return Const({"True": True, "False": False, "None": None}[node.id])
            return Unknown(f"name {node.id}")
        if isinstance(node, ast.Attribute):
            return self._attribute(node, frame)
        if isinstance(node, ast.Call):
            return self._call(node, frame)
        if isinstance(node, (ast.Tuple, ast.List)):
            items = tuple(self._expr(e, frame) for e in node.elts)
            if all(isinstance(i, Const) for i in items):
                return self.checked(Const(tuple(i.value for i in items)))
            return self.checked(Seq(items))
        if isinstance(node, ast.Subscript):
            base = self._expr(node.value, frame)
            index = self._expr(node.slice, frame)
            if isinstance(index, Const) and isinstance(index.value, int):
                return self._element(base, index.value)
            return Unknown("a subscript known only at run time")
        if isinstance(node, ast.UnaryOp):
            operand = self._expr(node.operand, frame)
            if isinstance(node.op, ast.Not) and isinstance(operand, Const):
                return Const(not operand.value, operand.source)
            if isinstance(node.op, ast.USub) and isinstance(operand, Const):
                return self._fold(operator.neg, (operand,)) or Unknown("negation")
            return Unknown("an operation known only at run time")
        if isinstance(node, ast.BoolOp):
            values = [self._expr(v, frame) for v in node.values]
            if all(isinstance(v, Const) for v in values):
                result = values[0].value
                for v in values[1:]:
                    result = (
                        (result and v.value)
                        if isinstance(node.op, ast.And)
                        else (result or v.value)
                    )
                return Const(result, values[0].source)
            return Unknown("a condition known only at run time")
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            left = self._expr(node.left, frame)
            right = self._expr(node.comparators[0], frame)
            folder = {ast.Is: operator.is_, ast.IsNot: operator.is_not, ast.Eq: operator.eq}
            function = folder.get(type(node.ops[0]))
            if function is not None:
                folded = self._fold(function, (left, right))
                if folded is not None:
                    return folded
            return Unknown("a comparison known only at run time")
        if isinstance(node, ast.IfExp):
            test = self._expr(node.test, frame)
            if isinstance(test, Const):
                return self._expr(node.body if test.value else node.orelse, frame)
            self._expr(node.body, frame)
            self._expr(node.orelse, frame)
            return Unknown(f"a choice on {getattr(test, 'source', 'a run-time value')}")
        if isinstance(node, ast.BinOp):
            self._expr(node.left, frame)
            self._expr(node.right, frame)
            return Unknown("arithmetic known only at run time")
        if isinstance(node, (ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.JoinedStr)):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self._expr(child, frame)
            return Unknown(f"a {type(node).__name__}")
        if isinstance(node, ast.Starred):
            return self._expr(node.value, frame)
        return Unknown(f"a {type(node).__name__} expression")

    def _fold(self, function: Callable[..., Any], args: Sequence[Any]) -> Const | None:
        for argument in args:
            if type(argument) is not Const or not isinstance(argument.value, _FOLDABLE_TYPES):
                return None
        values = [a.value for a in args]
        self._check_growth(function, values)
        try:
            result = function(*values)
        except Exception:  # a constant combination the operator rejects: leave it unfolded
            return None
        sources = [a.source for a in args if a.source != "constant"]
        return self.checked(Const(result, sources[0] if sources else "constant"))

    def _check_growth(self, function: Callable[..., Any], values: list[Any]) -> None:
        """Refuses, before computing it, a product or sum past the size budget."""
        sizes = [self.size(v) for v in values]
        self.charge(sum(sizes) - len(sizes))  # comparing or copying long values costs
        if len(values) != 2 or function not in (operator.mul, operator.add):
            return
        left, right = values
        ints = [type(v) in (int, bool) for v in values]
        if all(ints):
            bits = left.bit_length() + right.bit_length()
            if function is operator.mul and bits > MAX_INT_BITS:
                raise InterpretError(f"a folded integer would have more than {MAX_INT_BITS} bits")
            return
        if function is operator.mul and any(ints):
            count, repeated = (left, sizes[1]) if ints[0] else (right, sizes[0])
            grown = max(count, 0) * repeated
        else:
            grown = sizes[0] + sizes[1]
        if grown > MAX_CONSTANT_SIZE:
            raise InterpretError(
                f"a folded constant or list would have more than {MAX_CONSTANT_SIZE} elements"
            )

    def _dotted(self, node: ast.expr) -> tuple[str | None, str | None]:
        """`dotted(node)` and its first part, once per code node (the trees are shared)."""
        key = id(node)
        known = self._names.get(key)
        if known is None:
            name = dotted(node)
            known = self._names[key] = (name, name.split(".", 1)[0] if name else None)
        return known

    def _attribute(self, node: ast.Attribute, frame: _Frame) -> Any:
        name, head = self._dotted(node)
        if name is not None:
            if head not in frame.env:
                if name in self.code.functions:
                    return FunctionRef(name)
                if head == "CONSTANTS" and name.count(".") == 1:
                    return self._constant(name.split(".", 1)[1])
                return Unknown(f"global {name}")
        owner = self._expr(node.value, frame)
        return self.member(owner, node.attr)

    def _constant(self, key: str) -> Any:
        if key.startswith("c") and key[1:].isdigit() and int(key[1:]) < len(self.constants):
            value = self.constants[int(key[1:])]
            if isinstance(value, TensorRecord):
                return Value(f"CONSTANTS.{key}", f"constant tensor CONSTANTS.{key}")
            if isinstance(value, _FOLDABLE_TYPES) and _foldable_size(value):
                return Const(value, f"constant CONSTANTS.{key}")
        return Unknown(f"constant CONSTANTS.{key}")

    def member(self, owner: Any, name: str) -> Any:
        if not isinstance(owner, ModuleRef):
            return Unknown(f"attribute {name} of a run-time value")
        path = f"{owner.path}.{name}" if owner.path else name
        record = owner.record
        attributes = self._attributes.get(id(record))
        if attributes is None:
            attributes = self._attributes[id(record)] = record.attributes
        if name in attributes:
            value = attributes[name]
            if isinstance(value, Record):
                return ModuleRef(path, value)
            if isinstance(value, TensorRecord):
                return Value(path, f"parameter or buffer {path}")
            if isinstance(value, _FOLDABLE_TYPES) and _foldable_size(value):
                if name == "training":
                    return Const(value, f"module flag {path}")
                return Const(value, f"attribute {path}")
            return Unknown(f"attribute {path}")
        constant = self.code.class_constant(owner.record.qualified_name, name)
        if constant is not None:
            return Const(constant.value, f"constant {path}")
        return Unknown(f"attribute {path}")

    def _call(self, node: ast.Call, frame: _Frame) -> Any:
        func = node.func
        if type(func) is ast.Attribute and type(func.value) is ast.Name:
            # `(conv1).forward(x)`: the printer's method call on a local module reference.
            owner = frame.env.get(func.value.id)
            if isinstance(owner, ModuleRef):
                method = self.code.method(owner.record.qualified_name, func.attr)
                if method is not None:
                    return self._inline(method, owner, node, frame)
        name, head = self._dotted(func)
        if name is not None and head not in frame.env:
            op = op_name(name)
            if op == "prim::RaiseException":
                raise _Raised()
            if op is not None:
                return self._operator(op, node, frame)
            if name in self.code.functions:
                return self._inline(self.code.functions[name], None, node, frame)
            if name in _TRANSPARENT_BUILTINS and len(node.args) == 2:
                return self._expr(node.args[1], frame)
            if name == "getattr" and len(node.args) >= 2:
                owner = self._expr(node.args[0], frame)
                attribute = self._expr(node.args[1], frame)
                if isinstance(attribute, Const) and isinstance(attribute.value, str):
                    return self.member(owner, attribute.value)
                return Unknown("getattr with a run-time name")
            self._arguments(node, frame)
            return Unknown(f"result of {name}")
        callee = self._expr(func, frame)
        if isinstance(callee, FunctionRef):
            return self._inline(self.code.functions[callee.qualified], None, node, frame)
        if isinstance(func, ast.Attribute):
            owner = self._expr(func.value, frame)
            if isinstance(owner, ModuleRef):
                method = self.code.method(owner.record.qualified_name, func.attr)
                if method is not None:
                    return self._inline(method, owner, node, frame)
        self._arguments(node, frame)
        return Unknown("result of a call known only at run time")

    def _arguments(self, node: ast.Call, frame: _Frame) -> tuple[list[Any], dict[str, Any]]:
        positional = [self._expr(a, frame) for a in node.args]
        if not node.keywords:
            return positional, {}
        keywords = {k.arg: self._expr(k.value, frame) for k in node.keywords if k.arg}
        return positional, keywords

    def _operator(self, op: str, node: ast.Call, frame: _Frame) -> Any:
        self.charge(_NODE_WORK)
        positional, keywords = self._arguments(node, frame)
        folder = _FOLD.get(op)
        if folder is not None and not keywords:
            folded = self._fold(folder, positional)
            if folded is not None:
                return folded
        if op == "aten::len" and len(positional) == 1:
            value = positional[0]
            if isinstance(value, Seq):
                return Const(len(value.items))
            if isinstance(value, Const) and isinstance(value.value, (tuple, list, str)):
                return Const(len(value.value))
        output = f"%{len(self.nodes)}"
        self.nodes.append(
            RawNode(
                op,
                frame.scope,
                tuple(positional),
                keywords,
                [output],
                frame.module,
                len(self.nodes),
                (frame.position(node), frame.stack),
            )
        )
        return Value(output, f"{op} output {output}")

    def _inline(
        self, function: Function, owner: ModuleRef | None, node: ast.Call, frame: _Frame
    ) -> Any:
        if frame.depth >= MAX_CALL_DEPTH:
            raise InterpretError(f"calls nest more than {MAX_CALL_DEPTH} deep")
        self.charge(_CALL_WORK)
        positional, keywords = self._arguments(node, frame)
        tree = function.tree
        params = tree.args.args
        bound: dict[str, Any] = {}
        if owner is not None:
            if params:
                bound[params[0].arg] = owner
            params = params[1:]
        defaults = tree.args.defaults
        first_default = len(params) - len(defaults)
        for position, param in enumerate(params):
            if position < len(positional):
                bound[param.arg] = positional[position]
            elif param.arg in keywords:
                bound[param.arg] = keywords[param.arg]
            elif position >= first_default:
                literal = _literal(defaults[position - first_default])
                bound[param.arg] = literal if literal is not None else Unknown("a default")
            else:
                bound[param.arg] = Unknown(f"missing argument {param.arg}")
        module = owner.path if owner is not None else frame.module
        callee = _Frame(
            bound,
            module,
            frame.scope,
            frame.depth + 1,
            function.origin,
            (frame.position(node), frame.stack),
        )
        try:
            self._block(tree.body, callee)
        except _Return as returned:
            return returned.value
        return Const(None)

    # --- views -------------------------------------------------------------------------
    def arguments(self, node: RawNode) -> dict[str, Arg]:
        names = pick(node.op, node.positional, _is_bool_constant)
        args: dict[str, Arg] = {}
        for position, value in enumerate(node.positional):
            key = names[position] if position < len(names) else f"arg{position}"
            args[key] = to_arg(value)
        for key, value in node.keywords.items():
            args[key] = to_arg(value)
        return args


@dataclass(slots=True)
class _Frame:
    env: dict[str, Any]
    module: str
    scope: str
    depth: int
    origin: Origin
    stack: CallStack = None

    def child(self, scope: str) -> _Frame:
        return _Frame(dict(self.env), self.module, scope, self.depth, self.origin, self.stack)

    def __len__(self) -> int:
        return len(self.env)

    def position(self, node: ast.expr) -> CodePosition:
        origin = self.origin
        return (
            origin.member,
            node.lineno + origin.line_offset,
            node.col_offset + origin.column_offset,
        )


def to_arg(value: Any) -> Arg:
    if isinstance(value, Const):
        return Arg.const(value.value, source=value.source)
    if isinstance(value, Value):
        return Arg.dynamic(value.source)
    if isinstance(value, Unknown):
        return Arg.dynamic(value.source)
    if isinstance(value, Seq):
        return Arg.dynamic("a list of run-time values")
    if isinstance(value, ModuleRef):
        return Arg.dynamic(f"module {value.path or '<root>'}")
    return Arg.dynamic("a function")


def value_names(values: Iterator[Any] | Sequence[Any]) -> Iterator[str]:
    for value in values:
        if isinstance(value, Value):
            yield value.name
        elif isinstance(value, Seq):
            yield from value_names(value.items)

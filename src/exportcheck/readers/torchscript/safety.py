"""Which operators an archive's code reaches, however they are spelled, and what a load would run.

`torch.jit.load` compiles every code file and runs the `__setstate__` of each scripted object
it unpickles. Every call in that code, and in what it calls, is resolved to the operator it
names: through local aliases (`f = torch.from_file`, `o = ops.aten`, chains and tuple
unpacking), `ops.NS.op`, `torch.ops.NS.op`, attribute chains, method calls on values (a tensor,
list or string method is the `aten::` operator of that name) and on scripted objects (inlined
by following the call graph, each method summarized once). The resolution is flow-insensitive,
so it over-approximates: a name bound anywhere to an operator may be that operator at every
use. Load-time code must use only operators on the allow-list (operators.py); a call it cannot
resolve is unsafe too. Operators that touch files are reported wherever they appear.
"""

from __future__ import annotations

import ast
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from exportcheck.readers.torchscript.code import Function, InterpretError
from exportcheck.readers.torchscript.interpreter import CodeIndex, dotted
from exportcheck.readers.torchscript.operators import BUILTINS, FILE_SYSTEM, allowed_at_load_time
from exportcheck.readers.view import UnsafeContent

# Rounds of alias propagation per function; a chain written in reverse needs one per link.
MAX_ALIAS_ROUNDS = 16
# Possible meanings kept per name before it is taken as unknown.
MAX_MEANINGS = 32
MAX_REPORTED = 20
# Syntax nodes visited (once per round of alias propagation): a budget in the unit that grows.
MAX_WORK = 3_000_000

_CUSTOM_CLASS_PREFIX = "__torch__.torch.classes."
_GLOBAL_NAMESPACES = frozenset({"torch", "ops", "math", "__torch__", "CONSTANTS"})

# A meaning is a small tuple: ("ns", path) a namespace; ("op", name) an operator;
# ("class", q) a scripted class; ("new", q) its `__new__`; ("function", q);
# ("method", class q, name); ("object", class q or "") a value of that class ("" unknown:
# tensors, lists, strings...); ("custom", "NS.Class") one of torch's C++ classes;
# ("builtin", name); ("any",) anything at all.
Meaning = tuple[str, ...]
_ANY: Meaning = ("any",)
_VALUE: Meaning = ("object", "")
_CALLABLE_KINDS = frozenset({"op", "function", "method", "class", "new", "builtin", "custom"})

Key = tuple[str, str]  # (class qualified name or "", method or function name)


@dataclass
class Summary:
    """What one function does: the operators it uses (with a spelling each), the scripted
    functions and methods it calls, and the calls it could not resolve."""

    uses: dict[str, str] = field(default_factory=dict)
    calls: dict[Key, str] = field(default_factory=dict)
    unresolved: list[str] = field(default_factory=list)


class Analyzer:
    """Summaries of an archive's functions, each computed once."""

    def __init__(self, code: CodeIndex) -> None:
        self.code = code
        self._summaries: dict[Key, Summary] = {}
        self._prefixes: set[str] | None = None
        self._by_method_name: dict[str, list[Key]] | None = None
        self._scans: dict[int, _Scan] = {}
        self.work = 0

    def charge(self, units: int) -> None:
        self.work += units
        if self.work > MAX_WORK:
            raise InterpretError(
                f"code takes more than {MAX_WORK} steps to check for what a load would run"
            )

    def scan(self, tree: ast.FunctionDef) -> _Scan:
        """The function's bindings and the nodes to judge, found once per (shared) tree."""
        known = self._scans.get(id(tree))
        if known is None or known.tree is not tree:
            known = self._scans[id(tree)] = _scan(tree)
            self.charge(known.size)
        return known

    # --- the archive ---------------------------------------------------------------------
    def function(self, key: Key) -> Function | None:
        cls, name = key
        if cls:
            return self.code.method(cls, name)
        return self.code.functions.get(name)

    def summary(self, key: Key) -> Summary:
        known = self._summaries.get(key)
        if known is None:
            function = self.function(key)
            known = Summary()
            if function is not None:
                known = _FunctionWalk(self, key[0], function.tree).run()
            self._summaries[key] = known
        return known

    def is_namespace(self, path: str) -> bool:
        if self._prefixes is None:
            self._prefixes = set()
            for name in (*self.code.classes, *self.code.functions):
                parts = name.split(".")
                self._prefixes.update(".".join(parts[:i]) for i in range(1, len(parts)))
        return path in self._prefixes

    def methods_named(self, name: str) -> list[Key]:
        if self._by_method_name is None:
            self._by_method_name = {}
            for qualified, cls in self.code.classes.items():
                for method in cls.methods:
                    self._by_method_name.setdefault(method, []).append((qualified, method))
        return self._by_method_name.get(name, [])

    def class_type(self, annotation: ast.expr | None) -> Meaning:
        """The value a name annotated so holds."""
        while isinstance(annotation, ast.Subscript) and dotted(annotation.value) == "Optional":
            annotation = annotation.slice
        name = dotted(annotation) if annotation is not None else None
        if name is None:
            return _VALUE
        if name.startswith(_CUSTOM_CLASS_PREFIX):
            return ("object", "custom:" + name[len(_CUSTOM_CLASS_PREFIX) :])
        if name in self.code.classes:
            return ("object", name)
        return _VALUE


class _FunctionWalk:
    """One function: its names' meanings, then every call and reference in it."""

    def __init__(self, analyzer: Analyzer, cls: str, tree: ast.FunctionDef) -> None:
        self.analyzer = analyzer
        self.code = analyzer.code
        self.cls = cls
        self.tree = tree
        self.env: dict[str, frozenset[Meaning]] = {}
        self.summary = Summary()

    def run(self) -> Summary:
        params = self.tree.args.args
        for position, param in enumerate(params):
            if position == 0 and self.cls:
                self.env[param.arg] = frozenset({("object", self.cls)})
            else:
                self.env[param.arg] = frozenset({self.analyzer.class_type(param.annotation)})
        scan = self.analyzer.scan(self.tree)
        for _ in range(MAX_ALIAS_ROUNDS):
            self.analyzer.charge(scan.size)
            if not self._propagate(scan.bindings):
                break
        else:
            self._unresolved("names aliased through more links than are followed")
        memo: dict[int, frozenset[Meaning]] = {}
        self.analyzer.charge(scan.size)
        for node in scan.judged:
            if isinstance(node, ast.Call):
                self._call(node, memo)
            elif isinstance(node, (ast.Name, ast.Attribute)) and isinstance(node.ctx, ast.Load):
                self._reference(node, self._memo_eval(node, memo))
            elif isinstance(node, (ast.Lambda, ast.FunctionDef, ast.ClassDef)) and (
                node is not self.tree
            ):
                self._unresolved(f"a nested {type(node).__name__}")
        return self.summary

    def _memo_eval(self, node: ast.expr, memo: dict[int, frozenset[Meaning]]) -> frozenset[Meaning]:
        known = memo.get(id(node))
        if known is None:
            known = memo[id(node)] = self.eval(node)
        return known

    def _propagate(self, bindings: list[tuple[ast.expr, ast.expr | None]]) -> bool:
        changed = False
        for target, value in bindings:
            meanings = frozenset({_VALUE}) if value is None else self.eval(value)
            changed |= self._bind(target, value, meanings)
        return changed

    def _bind(self, target: ast.expr, value: ast.expr | None, meanings: frozenset[Meaning]) -> bool:
        if isinstance(target, ast.Name):
            old = self.env.get(target.id, frozenset())
            new = old | meanings
            if len(new) > MAX_MEANINGS:
                new = frozenset({_ANY})
            if new != old:
                self.env[target.id] = new
                return True
            return False
        if isinstance(target, (ast.Tuple, ast.List)):
            changed = False
            literal = isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(
                target.elts
            )
            for position, element in enumerate(target.elts):
                if literal:
                    part = value.elts[position]  # type: ignore[union-attr]
                    changed |= self._bind(element, part, self.eval(part))
                else:
                    changed |= self._bind(element, None, meanings | {_VALUE})
            return changed
        if isinstance(target, ast.Starred):
            return self._bind(target.value, None, meanings | {_VALUE})
        return False  # an attribute or subscript target changes no local name

    # --- meanings --------------------------------------------------------------------------
    def eval(self, node: ast.expr) -> frozenset[Meaning]:
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.Attribute):
            return self._members(self.eval(node.value), node.attr, called=False)
        if isinstance(node, ast.Call):
            return self._call_result(node)
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return _contents([self.eval(e) for e in node.elts])
        if isinstance(node, ast.Subscript):
            return _contents([self.eval(node.value)])
        if isinstance(node, ast.IfExp):
            return self.eval(node.body) | self.eval(node.orelse)
        if isinstance(node, ast.BoolOp):
            return frozenset().union(*(self.eval(v) for v in node.values))
        if isinstance(node, (ast.NamedExpr, ast.Starred)):
            return self.eval(node.value)
        if isinstance(node, ast.Lambda):
            return frozenset({_ANY})
        return frozenset({_VALUE})

    def _name(self, name: str) -> frozenset[Meaning]:
        bound = self.env.get(name)
        if bound is not None:
            return bound
        if name in _GLOBAL_NAMESPACES:
            return frozenset({("ns", name)})
        if name in BUILTINS:
            return frozenset({("builtin", name)})
        if name in ("True", "False", "None"):
            return frozenset({_VALUE})
        return frozenset({_ANY})

    def _members(self, owners: frozenset[Meaning], name: str, called: bool) -> frozenset[Meaning]:
        found: set[Meaning] = set()
        for owner in owners:
            found.update(self._member(owner, name, called))
        return frozenset(found) if len(found) <= MAX_MEANINGS else frozenset({_ANY})

    def _member(self, owner: Meaning, name: str, called: bool) -> list[Meaning]:
        kind = owner[0]
        if kind == "ns":
            return [self._namespace_member(owner[1], name)]
        if kind == "op":
            return [owner]  # `ops.aten.add.Tensor`: an overload of the same operator
        if kind == "class":
            if name == "__new__":
                return [("new", owner[1])]
            if name in self.code.classes[owner[1]].methods:
                return [("method", owner[1], name)]
            return [_VALUE]
        if kind == "object":
            return self._object_member(owner[1], name, called)
        if kind == "any":
            return [_ANY, ("op", f"aten::{name}"), *self._any_method(name)]
        return [_ANY]

    def _namespace_member(self, path: str, name: str) -> Meaning:
        if path == "torch":
            if name in ("ops", "classes"):
                return ("ns", f"torch.{name}")
            return ("op", f"aten::{name}")
        if path == "torch.ops":
            return ("ns", f"ops.{name}")
        if path == "ops":
            return ("ns", f"ops.{name}")
        if path.startswith("ops."):
            return ("op", f"{path[4:]}::{name}")
        if path == "math":
            return ("op", f"aten::{name}")
        if path == "CONSTANTS":
            return _VALUE
        if path == "torch.classes":
            return ("ns", f"torch.classes.{name}")
        if path.startswith("torch.classes."):
            return ("custom", f"{path[len('torch.classes.') :]}.{name}")
        qualified = f"{path}.{name}"
        if qualified in self.code.classes:
            return ("class", qualified)
        if qualified in self.code.functions:
            return ("function", qualified)
        if qualified.startswith(_CUSTOM_CLASS_PREFIX):
            return ("custom", qualified[len(_CUSTOM_CLASS_PREFIX) :])
        if self.analyzer.is_namespace(qualified):
            return ("ns", qualified)
        return _ANY

    def _object_member(self, cls: str, name: str, called: bool) -> list[Meaning]:
        if cls.startswith("custom:"):
            return [("op", f"classes::{cls[len('custom:') :]}.{name}")] if called else [_VALUE]
        if cls:
            code = self.code.classes[cls]
            if name in code.methods:
                return [("method", cls, name)]
            if not called:
                return [self.analyzer.class_type(code.attribute_type(name))]
        if not called:
            return [_VALUE]
        # A method of a value of unknown type: a builtin method (`aten::NAME`), or any
        # scripted class's method of that name.
        return [("op", f"aten::{name}"), *self._any_method(name)]

    def _any_method(self, name: str) -> list[Meaning]:
        methods = self.analyzer.methods_named(name)
        if len(methods) > MAX_MEANINGS:
            return [_ANY]  # too many to follow: a call on it is unresolved, hence unsafe
        return [("method", cls, method) for cls, method in methods]

    def _callee(self, func: ast.expr) -> frozenset[Meaning]:
        if isinstance(func, ast.Attribute):
            return self._members(self.eval(func.value), func.attr, called=True)
        return self.eval(func)

    def _call_result(self, node: ast.Call) -> frozenset[Meaning]:
        result: set[Meaning] = set()
        for callee in self._callee(node.func):
            if callee[0] in ("new", "class"):
                result.add(("object", callee[1]))
            elif callee[0] == "builtin" and callee[1] in ("unchecked_cast", "annotate"):
                if node.args:
                    result.add(self.analyzer.class_type(node.args[0]))
                    result.update(self.eval(node.args[-1]))
            elif callee[0] == "builtin" and callee[1] == "getattr":
                result.update(self._getattr(node))
            else:
                result.add(_VALUE)
        return frozenset(result) if len(result) <= MAX_MEANINGS else frozenset({_ANY})

    def _getattr(self, node: ast.Call) -> frozenset[Meaning]:
        if len(node.args) >= 2:
            name = node.args[1]
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                return self._members(self.eval(node.args[0]), name.value, called=False)
        return frozenset({_ANY})

    # --- what the function does ----------------------------------------------------------
    def _call(self, node: ast.Call, memo: dict[int, frozenset[Meaning]]) -> None:
        spelling = _spelling(node.func)
        for callee in self._callee(node.func):
            kind = callee[0]
            if kind == "op":
                self.summary.uses.setdefault(callee[1], spelling)
            elif kind == "builtin":
                self.summary.uses.setdefault(BUILTINS[callee[1]], spelling)
            elif kind == "custom":
                self.summary.uses.setdefault(f"classes::{callee[1]}", spelling)
            elif kind == "new":
                self.summary.uses.setdefault("prim::CreateObject", spelling)
            elif kind == "class":
                self.summary.uses.setdefault("prim::CreateObject", spelling)
                if "__init__" in self.code.classes[callee[1]].methods:
                    self.summary.calls.setdefault((callee[1], "__init__"), spelling)
            elif kind == "function":
                self.summary.calls.setdefault(("", callee[1]), spelling)
            elif kind == "method":
                self.summary.calls.setdefault((callee[1], callee[2]), spelling)
            else:
                self._unresolved(f"{spelling} (a call this reader cannot resolve)")

    def _reference(self, node: ast.expr, meanings: frozenset[Meaning]) -> None:
        for meaning in meanings:
            if meaning[0] == "op":
                self.summary.uses.setdefault(meaning[1], _spelling(node))
            elif meaning[0] == "function":
                self.summary.calls.setdefault(("", meaning[1]), _spelling(node))
            elif meaning[0] == "method":
                self.summary.calls.setdefault((meaning[1], meaning[2]), _spelling(node))

    def _unresolved(self, what: str) -> None:
        if len(self.summary.unresolved) < 5:
            self.summary.unresolved.append(what)


def _contents(parts: list[frozenset[Meaning]]) -> frozenset[Meaning]:
    """What an element of a container may be: any callable meaning put in it, or a value."""
    found = {m for part in parts for m in part if m[0] in _CALLABLE_KINDS or m[0] in ("ns", "any")}
    found.add(_VALUE)
    return frozenset(found) if len(found) <= MAX_MEANINGS else frozenset({_ANY})


@dataclass(frozen=True)
class _Scan:
    """One function's syntax: every (target, value) a name is bound by (None where the value
    is one at run time), the nodes to judge (calls, loaded names and attributes, nested
    definitions), and how many nodes it has."""

    tree: ast.FunctionDef
    bindings: list[tuple[ast.expr, ast.expr | None]]
    judged: list[ast.AST]
    size: int


_JUDGED = (ast.Call, ast.Name, ast.Attribute, ast.Lambda, ast.FunctionDef, ast.ClassDef)


def _scan(tree: ast.FunctionDef) -> _Scan:
    found: list[tuple[ast.expr, ast.expr | None]] = []
    judged: list[ast.AST] = []
    size = 0
    for node in ast.walk(tree):
        size += 1
        if isinstance(node, _JUDGED):
            judged.append(node)
        if isinstance(node, ast.Assign):
            found.extend((target, node.value) for target in node.targets)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            found.append((node.target, node.value))
        elif isinstance(node, ast.AugAssign):
            found.append((node.target, None))
        elif isinstance(node, ast.NamedExpr):
            found.append((node.target, node.value))
        elif isinstance(node, (ast.For, ast.comprehension)):
            found.append((node.target, ast.Subscript(node.iter, ast.Constant(0), ast.Load())))
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            found.append((node.optional_vars, node.context_expr))
    return _Scan(tree, found, judged, size)


def _spelling(node: ast.expr) -> str:
    name = dotted(node)
    if name is not None and len(name) <= 120:
        return name
    line = getattr(node, "lineno", "?")
    return f"an expression on line {line}"


# --- the archive's verdict ---------------------------------------------------------------------


# A function can reach a file operator only by naming it (or by `getattr` with a string): code
# members in ASCII that never do are not walked for it. Python folds other scripts' letters to
# ASCII in identifiers (NFKC), so a member that is not ASCII is always walked.
_FILE_WORDS = re.compile(
    rb"\b(?:getattr|"
    + b"|".join(op.split("::")[1].encode() for op in sorted(FILE_SYSTEM))
    + rb")\b"
)


def _may_name_file_ops(data: bytes) -> bool:
    return not data.isascii() or _FILE_WORDS.search(data) is not None


def unsafe_code(code: CodeIndex, texts: Mapping[str, bytes]) -> list[UnsafeContent]:
    """Load-time code off the allow-list, and file-system operators anywhere. `texts`: the
    code members' bytes by member name."""
    analyzer = Analyzer(code)
    suspect = {member for member, data in texts.items() if _may_name_file_ops(data)}
    found: list[UnsafeContent] = []
    for qualified, cls in code.classes.items():
        if "__setstate__" in cls.methods:
            found.extend(_load_time(analyzer, (qualified, "__setstate__")))
    for key, function in _every_function(code):
        if key[1] == "__setstate__" or function.origin.member not in suspect:
            continue
        for op, spelling in analyzer.summary(key).uses.items():
            if op in FILE_SYSTEM:
                found.append(
                    UnsafeContent(
                        function.origin.member, f"{_label(key)} calls {spelling} when called"
                    )
                )
    if len(found) > MAX_REPORTED:
        more = len(found) - MAX_REPORTED
        found = found[:MAX_REPORTED]
        found.append(UnsafeContent(found[-1].member, f"and {more} more unsafe calls"))
    return found


def _every_function(code: CodeIndex) -> list[tuple[Key, Function]]:
    keys: list[tuple[Key, Function]] = [(("", q), f) for q, f in code.functions.items()]
    for qualified, cls in code.classes.items():
        keys.extend(((qualified, name), method) for name, method in cls.methods.items())
    return keys


def _load_time(analyzer: Analyzer, root: Key) -> list[UnsafeContent]:
    """Everything `root` reaches off the allow-list, through each function it calls."""
    member = analyzer.function(root).origin.member  # type: ignore[union-attr]
    found: list[UnsafeContent] = []
    seen = {root}
    queue = deque([root])
    while queue and len(found) < MAX_REPORTED:
        key = queue.popleft()
        summary = analyzer.summary(key)
        through = "" if key == root else f", through {_label(key)}"
        if analyzer.function(key) is None:
            found.append(
                UnsafeContent(
                    member,
                    f"{_label(root)} calls {_label(key)}, which the archive does not define{through}",
                )
            )
            continue
        for op, spelling in summary.uses.items():
            if not allowed_at_load_time(op):
                found.append(
                    UnsafeContent(
                        member,
                        f"{_label(root)} calls {spelling} at load time{through} ({op} is not "
                        "on the load-time allow-list)",
                    )
                )
        for what in summary.unresolved:
            found.append(UnsafeContent(member, f"{_label(root)} runs {what} at load time{through}"))
        for callee in summary.calls:
            if callee not in seen:
                seen.add(callee)
                queue.append(callee)
    return found


def _label(key: Key) -> str:
    cls, name = key
    return f"{cls.rsplit('.', 1)[-1]}.{name}" if cls else name.rsplit(".", 1)[-1]

"""Pickles read without running them: a global scanner, and an unpickler that builds inert records.

The unpickler never hands pickle a real callable: every global, allowed or not, resolves to a
record type or a function of this module, so REDUCE, NEWOBJ and BUILD only ever build plain
data. `__setstate__` of the pickled classes is never looked up, and storages stay persistent
references that are never read.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from exportcheck.errors import first_line

_TORCH_PICKLE_HELPERS = frozenset(
    {
        "build_intlist",
        "build_tensorlist",
        "build_doublelist",
        "build_boollist",
        "build_tensor_from_id",
        "restore_type_tag",
    }
)
_REBUILDERS = frozenset(
    {
        "_rebuild_tensor_v2",
        "_rebuild_tensor",
        "_rebuild_qtensor",
        "_rebuild_parameter",
        "_rebuild_parameter_with_state",
        "_rebuild_sparse_tensor",
    }
)
_STORAGE = re.compile(r"^[A-Za-z0-9_]*Storage$")
_DTYPES = frozenset(
    {
        "float32",
        "float64",
        "float16",
        "bfloat16",
        "int64",
        "int32",
        "int16",
        "int8",
        "uint8",
        "bool",
        "complex64",
        "complex128",
    }
)
MAX_TENSOR_ELEMENTS = 1 << 40


def is_allowed_global(module: str, name: str) -> bool:
    """The globals torch writes into TorchScript archives and tensor pickles, and nothing else."""
    if module == "__torch__" or module.startswith("__torch__."):
        return True
    if module == "torch._utils":
        return name in _REBUILDERS
    if module == "torch.jit._pickle":
        return name in _TORCH_PICKLE_HELPERS
    if module == "torch":
        return bool(_STORAGE.match(name)) or name in _DTYPES or name in ("Size", "device")
    if module == "collections":
        return name == "OrderedDict"
    if module == "builtins":
        return name in ("complex", "set", "frozenset", "slice")
    return False


def scan_globals(data: bytes) -> list[tuple[str, str]]:
    """Every global a pickle names, read with pickletools (nothing is built or called).

    Raises ValueError for a pickle pickletools cannot walk.
    """
    found: list[tuple[str, str]] = []
    strings: list[str] = []
    memo: dict[int, Any] = {}
    last: Any = None
    try:
        for opcode, arg, _ in pickletools.genops(io.BytesIO(data)):
            name = opcode.name
            if name in ("GLOBAL", "INST"):
                module, _, attr = str(arg).partition(" ")
                found.append((module, attr))
            elif name == "STACK_GLOBAL":
                if len(strings) >= 2:
                    found.append((strings[-2], strings[-1]))
                else:
                    found.append(("<unknown>", "<stack global>"))
            elif name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
                strings.append(arg)
                last = arg
                continue
            elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
                memo[arg] = last
                continue
            elif name == "MEMOIZE":
                memo[len(memo)] = last
                continue
            elif name in ("BINGET", "LONG_BINGET", "GET"):
                value = memo.get(arg)
                if isinstance(value, str):
                    strings.append(value)
                last = value
                continue
            last = None
    except Exception as error:  # pickletools raises ValueError and friends on damaged data
        raise ValueError(f"not a readable pickle ({type(error).__name__}: {error})") from None
    return found


def unsafe_globals(data: bytes) -> list[str]:
    """`module.name` of every global outside the allowlist, in order, without duplicates."""
    names: list[str] = []
    for module, name in scan_globals(data):
        if not is_allowed_global(module, name):
            dotted = f"{module}.{name}"
            if dotted not in names:
                names.append(dotted)
    return names


@dataclass(frozen=True)
class StorageRef:
    """A tensor storage named by a persistent id: where its bytes are, never the bytes."""

    key: str
    dtype: str
    numel: int


@dataclass(frozen=True)
class TensorRecord:
    """A tensor's declaration: storage reference and shape."""

    storage: StorageRef | None
    shape: tuple[int, ...]


_RECORD_INTERNALS = ("_pickle_args", "_pickle_state", "_attributes")


class Record:
    """An object of a pickled class, rebuilt as its class name and attributes only."""

    qualified_name: str = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> Record:
        instance = object.__new__(cls)
        instance.__dict__["_pickle_args"] = args
        return instance

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        # BUILD lands here, never in the pickled class's own __setstate__; a state that is not
        # an attribute dict (a custom __getstate__) is kept as data.
        self.__dict__.pop("_attributes", None)
        if isinstance(state, dict):
            refused = [
                k for k in state if type(k) is not str or k[:2] == "__" or k in _RECORD_INTERNALS
            ]
            if refused:
                state = {k: v for k, v in state.items() if k not in refused}
            self.__dict__.update(state)
        else:
            self.__dict__["_pickle_state"] = state

    @property
    def attributes(self) -> dict[str, Any]:
        """The attributes BUILD set (one dict, built on first use: callers only read it)."""
        cached = self.__dict__.get("_attributes")
        if cached is None:
            cached = {k: v for k, v in self.__dict__.items() if k not in _RECORD_INTERNALS}
            self.__dict__["_attributes"] = cached
        return cached


@dataclass
class _Context:
    unsafe: list[str] = field(default_factory=list)
    types: dict[str, type] = field(default_factory=dict)


def _record_type(context: _Context, qualified: str) -> type:
    made = context.types.get(qualified)
    if made is None:
        made = type("Record", (Record,), {"qualified_name": qualified})
        context.types[qualified] = made
    return made


def _rebuild_tensor(storage: Any = None, offset: Any = 0, size: Any = (), *rest: Any) -> Any:
    if isinstance(storage, TensorRecord):  # _rebuild_parameter(tensor, requires_grad, hooks)
        return storage
    shape = tuple(size) if isinstance(size, (tuple, list)) else ()
    numel = 1
    for dim in shape:
        if not isinstance(dim, int) or dim < 0:
            raise pickle.UnpicklingError(f"tensor declared with shape {shape!r}")
        numel *= dim
        if numel > MAX_TENSOR_ELEMENTS:
            raise pickle.UnpicklingError(f"tensor declared with {shape!r} elements")
    return TensorRecord(storage if isinstance(storage, StorageRef) else None, shape)


def _first(value: Any = None, *rest: Any) -> Any:
    return value


def _ordered_dict(*args: Any) -> dict:
    return {}


def _inert(*args: Any, **kwargs: Any) -> None:
    return None


class _Restricted:
    """find_class and persistent_load shared by the C and the pure-Python unpickler."""

    context: _Context

    def find_class(self, module: str, name: str) -> Any:
        if not is_allowed_global(module, name):
            dotted = f"{module}.{name}"
            if dotted not in self.context.unsafe:
                self.context.unsafe.append(dotted)
            return _record_type(self.context, f"<unsafe {dotted}>")
        if module.startswith("__torch__"):
            return _record_type(self.context, f"{module}.{name}")
        if module == "torch._utils":
            return _rebuild_tensor
        if module == "torch.jit._pickle":
            return _first if name != "build_tensor_from_id" else _inert
        if module == "collections":
            return _ordered_dict
        if module == "builtins" and name == "complex":
            return complex
        return _record_type(self.context, f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage":
            storage_type = pid[1]
            dtype = getattr(storage_type, "qualified_name", str(storage_type))
            numel = pid[4] if isinstance(pid[4], int) else 0
            return StorageRef(str(pid[2]), dtype.rsplit(".", 1)[-1], numel)
        return StorageRef(str(pid), "", 0)


class _RestrictedUnpickler(_Restricted, pickle.Unpickler):
    def __init__(self, data: bytes, context: _Context) -> None:
        super().__init__(io.BytesIO(data))
        self.context = context


class _EnumTolerantUnpickler(_Restricted, pickle._Unpickler):  # type: ignore[name-defined]
    """The pure-Python unpickler, with REDUCE accepting one bare argument: TorchScript pickles
    an enum attribute as `GLOBAL Enum; 'NAME'; REDUCE`, which torch's own unpickler reads and
    the C one refuses ("argument list must be a tuple"). Slower, so used only for such pickles.
    """

    dispatch = dict(pickle._Unpickler.dispatch)  # type: ignore[attr-defined]

    def __init__(self, data: bytes, context: _Context) -> None:
        super().__init__(io.BytesIO(data))
        self.context = context

    def load_reduce(self) -> None:
        stack = self.stack
        args = stack.pop()
        function = stack[-1]
        stack[-1] = function(*args) if isinstance(args, tuple) else function(args)

    dispatch[pickle.REDUCE[0]] = load_reduce


@dataclass(frozen=True)
class Unpickled:
    value: Any
    unsafe_globals: tuple[str, ...]


class _RefusedPickle(Exception):
    pass


# Protocol 5's bytearray and out-of-band buffers: torch writes protocol 2, and CPython's C
# unpickler, reading a BYTEARRAY8 longer than the data left, leaks a buffer export and prints
# "SystemError: deallocated bytearray object has exported buffers" on stderr.
_REFUSED_OPCODES = frozenset({"BYTEARRAY8", "NEXT_BUFFER", "READONLY_BUFFER"})


def _check_opcodes(data: bytes) -> None:
    """Reads the opcodes before the unpickler does, and refuses what no pickle torch wrote
    holds: an opcode of protocol 5's buffers, a memo index past the pickle's own length (the
    unpickler sizes its memo to the largest index a PUT names, 16 bytes each), or opcodes that
    do not parse (truncated or unknown: the unpickler would fail on them too)."""
    try:
        for opcode, arg, _ in pickletools.genops(io.BytesIO(data)):
            if opcode.name in _REFUSED_OPCODES:
                raise _RefusedPickle(f"opcode {opcode.name} (protocol 5; torch writes protocol 2)")
            if opcode.name in ("BINPUT", "LONG_BINPUT", "PUT") and arg > len(data):
                raise _RefusedPickle(f"memo index {arg} past the pickle's {len(data)} bytes")
    except _RefusedPickle:
        raise
    except Exception as error:
        raise _RefusedPickle(first_line(error)) from None


def restricted_load(data: bytes) -> Unpickled:
    """The pickle as inert data; raises ValueError for a damaged or malicious-but-broken one."""
    context = _Context()
    try:
        _check_opcodes(data)
        try:
            value = _RestrictedUnpickler(data, context).load()
        except TypeError as error:
            if "argument list must be a tuple" not in str(error):
                raise
            context = _Context()
            value = _EnumTolerantUnpickler(data, context).load()
    except RecursionError:
        raise ValueError("pickle nests too deeply") from None
    except MemoryError:
        raise ValueError("pickle too large to read") from None
    except _RefusedPickle as error:
        raise ValueError(f"not a readable pickle ({error})") from None
    except Exception as error:
        raise ValueError(f"not a readable pickle ({type(error).__name__}: {error})") from None
    return Unpickled(value, tuple(context.unsafe))


def walk_records(value: Any, limit: int = 1_000_000) -> Iterator[Any]:
    """Every value reachable from `value` (containers and record attributes), iteratively."""
    stack = [value]
    seen: set[int] = set()
    while stack and limit > 0:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        limit -= 1
        yield current
        if isinstance(current, Record):
            stack.extend(current.attributes.values())
        elif isinstance(current, dict):
            stack.extend(current.values())
        elif isinstance(current, (list, tuple, set, frozenset)):
            stack.extend(current)

"""Runtimes run in a process of their own: OpenVINO and tract are native code that a hostile or
merely unusual artifact can crash (a segfault, an abort), and exportcheck must outlive that.

`IsolatedRuntime` wraps a runtime: the parent keeps only its name and whether it is
installed, and a host process (`python -m exportcheck.comparison.runtimes`) imports the
runtime, loads artifacts and runs them. A host that dies fails what it was doing with
`RuntimeCrashed`, which the comparison reports as that runtime's verdict on that artifact; the
next request starts a fresh host.

The host also hides what the runtime costs up front: `warm_up` starts it (and its import)
while the model is audited and exported, and `prefetch` sends an artifact's loads as soon as
the static pass has cleared it, so OpenVINO compiles on another core while ONNX Runtime runs.

Messages are JSON headers and raw array bytes, never pickles: a host that a hostile artifact
took over must not be able to run code in exportcheck."""

from __future__ import annotations

import atexit
import collections
import contextlib
import functools
import gc
import itertools
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import weakref
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO

import numpy as np

from exportcheck.comparison.runtimes.base import (
    Runner,
    RunnerUnavailable,
    Runtime,
    RuntimeCrashed,
    RuntimeRefused,
)

_HEADER = struct.Struct("<I")
_ARRAY = struct.Struct("<Q")
# The dtypes a runtime's inputs and outputs may have; anything else (object arrays) is refused.
_PLAIN_KINDS = "biufc"
_EXTENDED_DTYPES = (
    "bfloat16",
    "float8_e4m3fn",
    "float8_e5m2",
    "float8_e4m3fnuz",
    "float8_e5m2fnuz",
)
# The lines of a dead host's stderr kept to say why it died.
_STDERR_LINES = 5
# Loads and runs a host does at once: the next artifact compiles while the last one runs.
_THREADS = 2
# How long answers a dead host wrote are still read before what waits on them fails.
_LAST_ANSWERS_S = 1.0


def _dtype(name: str) -> np.dtype:
    if name in _EXTENDED_DTYPES:
        import ml_dtypes

        return np.dtype(getattr(ml_dtypes, name))
    dtype = np.dtype(name)
    if dtype.kind not in _PLAIN_KINDS:
        raise ValueError(f"arrays of dtype {name} are not passed between processes")
    return dtype


def encode_message(header: dict[str, Any], arrays: Sequence[Any] = ()) -> bytes:
    """One message: the header (with each array's dtype and shape), then each array's bytes;
    ValueError for an array of a dtype no message carries."""
    plain = [np.ascontiguousarray(a) for a in arrays]
    for array in plain:
        _dtype(array.dtype.name)
    header = {**header, "arrays": [[a.dtype.name, list(a.shape)] for a in plain]}
    encoded = json.dumps(header).encode()
    parts = [_HEADER.pack(len(encoded)), encoded]
    for array in plain:
        data = array.tobytes()
        parts += [_ARRAY.pack(len(data)), data]
    return b"".join(parts)


def write_message(stream: BinaryIO, header: dict[str, Any], arrays: Sequence[Any] = ()) -> None:
    stream.write(encode_message(header, arrays))
    stream.flush()


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError
    return data


def read_message(stream: BinaryIO) -> tuple[dict[str, Any], list[np.ndarray]]:
    """The next message; EOFError at the end of the stream."""
    (size,) = _HEADER.unpack(_read_exactly(stream, _HEADER.size))
    header = json.loads(_read_exactly(stream, size))
    arrays = []
    for name, shape in header.pop("arrays"):
        (length,) = _ARRAY.unpack(_read_exactly(stream, _ARRAY.size))
        dtype = _dtype(name)
        data = _read_exactly(stream, length)
        arrays.append(np.frombuffer(data, dtype=dtype).reshape(shape).copy())
    return header, arrays


def _same_exportcheck() -> dict[str, str]:
    """The environment with this process's exportcheck first on the path: a host must import
    the copy that sends it requests, wherever that came from (a wheel, a checkout, a path a
    script inserted). Relative entries are made absolute: the host runs from the root folder,
    so that a caller's working folder can go away (a temporary one) under it."""
    import exportcheck

    root = os.path.dirname(os.path.dirname(os.path.abspath(exportcheck.__file__)))
    rest = [os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join([root, *rest])}


class _Host:
    """One host process and the requests it has not answered yet, by the id each carries: the
    host answers a run as soon as it is done, before a load sent earlier."""

    def __init__(self, runtime: Runtime) -> None:
        self.title = runtime.title
        self.process = subprocess.Popen(
            [sys.executable, "-m", "exportcheck.comparison.runtimes"],
            env=_same_exportcheck(),
            cwd=os.path.abspath(os.sep),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C goes to exportcheck, which ends the host
        )
        self.write_lock = threading.Lock()
        self.pending_lock = threading.Lock()
        self.pending: dict[int, Future[tuple[dict[str, Any], list[np.ndarray]]]] = {}
        self.ids = itertools.count(1)
        self.stderr: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES)
        self.dead: str | None = None
        self.answers = threading.Thread(
            target=self._answers, name=f"{runtime.name}-host", daemon=True
        )
        self.answers.start()
        threading.Thread(target=self._errors, name=f"{runtime.name}-stderr", daemon=True).start()
        threading.Thread(target=self._watch, name=f"{runtime.name}-watch", daemon=True).start()

    def request(
        self, header: dict[str, Any], arrays: Sequence[Any] = (), *, answered: bool = True
    ) -> Future[tuple[dict[str, Any], list[np.ndarray]]]:
        """Sends one request; the future holds its answer. The answers are read on a thread of
        their own, so a large answer never waits on a large request (or the reverse)."""
        ident = next(self.ids) if answered else None
        message = encode_message({**header, "id": ident}, arrays)
        future: Future[tuple[dict[str, Any], list[np.ndarray]]] = Future()
        with self.write_lock:
            with self.pending_lock:
                if self.dead is not None:
                    future.set_exception(RuntimeCrashed(self.dead))
                    return future
                if ident is not None:
                    self.pending[ident] = future
                else:
                    future.set_result(({}, []))
            assert self.process.stdin is not None
            # A host that is gone: the answers' thread fails what waits on it.
            with contextlib.suppress(OSError, ValueError):  # ValueError: its input was closed
                self.process.stdin.write(message)
                self.process.stdin.flush()
        return future

    def _answers(self) -> None:
        assert self.process.stdout is not None
        while True:
            try:
                answer = read_message(self.process.stdout)
            except (EOFError, OSError, ValueError):
                break
            with self.pending_lock:
                future = self.pending.pop(answer[0].pop("id", None), None)
            if future is not None:
                future.set_result(answer)
        self._ended()

    def _watch(self) -> None:
        """The host's end, seen even while its answers stay open: a child it forked holds
        them (a runtime's telemetry did)."""
        self.process.wait()
        self.answers.join(timeout=_LAST_ANSWERS_S)
        self._ended()

    def _ended(self) -> None:
        """Fails what is still waiting, once, with why the host is gone."""
        reason = self._death()
        with self.pending_lock:
            if self.dead is not None:
                return
            self.dead = reason
            waiting, self.pending = list(self.pending.values()), {}
        for future in waiting:
            future.set_exception(RuntimeCrashed(reason))

    def _errors(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            text = line.decode(errors="replace").strip()
            if text:
                self.stderr.append(text)

    def _death(self) -> str:
        """Why the host is gone, in one line: the signal or status, and its last words."""
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # it closed its answers but lives on
            self.process.kill()
            code = self.process.wait()
        how = f"exited with status {code}"
        if code < 0:
            with contextlib.suppress(ValueError):
                how = f"killed by {signal.Signals(-code).name}"
        last = self.stderr[-1] if self.stderr else ""
        return f"{self.title} crashed ({how}{': ' + last if last else ''})"

    def close(self) -> None:
        with self.write_lock:
            if self.process.stdin is not None:
                with contextlib.suppress(OSError):
                    self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_HOSTS: dict[str, _Host] = {}
_HOSTS_LOCK = threading.Lock()


def _host(runtime: Runtime) -> _Host:
    """The live host of this runtime, started if there is none or the last one died."""
    with _HOSTS_LOCK:
        host = _HOSTS.get(runtime.name)
        if host is None or host.dead is not None:
            host = _HOSTS[runtime.name] = _Host(runtime)
        return host


@atexit.register
def close_hosts() -> None:
    """Ends every host (they also end when exportcheck's end closes their input)."""
    with _HOSTS_LOCK:
        hosts = list(_HOSTS.values())
        _HOSTS.clear()
    for host in hosts:
        host.close()


def _answer(future: Future[tuple[dict[str, Any], list[np.ndarray]]]) -> Any:
    """The host's answer, or its error raised as the exception the comparison expects."""
    header, arrays = future.result()
    error = header.get("error")
    if error == "refused":
        raise RuntimeRefused(header["message"])
    if error == "unavailable":
        raise RunnerUnavailable(header["message"])
    if error is not None:
        raise RuntimeError(header["message"])
    return header["value"] if "value" in header else arrays


class IsolatedRuntime(Runtime):
    """A runtime whose loads and runs happen in its host process; its registry entry names it
    like the runtime it wraps."""

    def __init__(self, inner: Runtime) -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]
        self.title = inner.title  # type: ignore[misc]
        self.package = inner.package  # type: ignore[misc]
        self.extra = inner.extra  # type: ignore[misc]
        self.kinds = inner.kinds  # type: ignore[misc]
        self._described: str | None = None
        self._options: dict[tuple[str, str], tuple[_Host, Future[Any]]] = {}
        self._prefetched: dict[tuple[str, str, str, str | None], tuple[_Host, Future[Any]]] = {}
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Starts the host and has it import the runtime and list its CPU configurations
        (OpenVINO creates its Core there), without waiting for either."""
        if self.installed():
            for kind in sorted(self.kinds):
                self._ask_options(kind, "cpu")

    def _ask_options(self, kind: str, device: str) -> Future[Any]:
        """The options, asked of the live host: an answer from a host that has since ended
        would hold, but asking again is what warms a new one up."""
        with self._lock:
            host = _host(self)
            asked = self._options.get((kind, device))
            if asked is None or asked[0] is not host:
                request = {"op": "options", "runtime": self.name, "kind": kind, "device": device}
                asked = self._options[(kind, device)] = (host, host.request(request))
            return asked[1]

    def options(self, kind: str, device: str) -> Sequence[str | None]:
        return tuple(_answer(self._ask_options(kind, device)))

    def prefetch(self, path: str, kind: str, devices: Sequence[str]) -> None:
        for device in devices:
            try:
                options = self.options(kind, device)
            except Exception:  # the load that follows reports it
                return
            for option in options:
                key = (path, kind, device, option)
                with self._lock:
                    if key not in self._prefetched:
                        self._prefetched[key] = self._send_load(*key)

    def forget(self, path: str) -> None:
        with self._lock:
            stale = [key for key in self._prefetched if key[0] == path]
            sent = [self._prefetched.pop(key) for key in stale]
        for host, future in sent:
            future.add_done_callback(functools.partial(_drop_loaded, host))

    def _send_load(
        self, path: str, kind: str, device: str, option: str | None
    ) -> tuple[_Host, Future[Any]]:
        host = _host(self)
        request = {
            "op": "load",
            "runtime": self.name,
            "path": os.path.abspath(path),
            "kind": kind,
            "device": device,
            "option": option,
        }
        return host, host.request(request)

    def load(self, path: str, kind: str, device: str, option: str | None, loaded: Any) -> Runner:
        with self._lock:
            sent = self._prefetched.pop((path, kind, device, option), None)
        model = _HostedModel(*(sent or self._send_load(path, kind, device, option)))
        names, provider = model.open()
        return Runner(self.name, device, provider, None, names, model)

    def describe(self) -> str:
        if self._described is None:
            request = {"op": "describe", "runtime": self.name}
            self._described = str(_answer(_host(self).request(request)))
        return self._described

    def refuse(self, error: BaseException) -> str:
        return self.inner.refuse(error)

    def refused_node(self, reason: str) -> str | None:
        return self.inner.refused_node(reason)


class _HostedModel:
    """A loaded artifact in a host: called with inputs, it runs there. Dropped from the host
    when the runner that holds it is."""

    def __init__(self, host: _Host, loading: Future[Any]) -> None:
        self.host = host
        self.loading = loading
        self.handle: int | None = None

    def open(self) -> tuple[list[str], str | None]:
        """The output names and the device the runtime compiled for; the runtime's refusal
        or crash is raised."""
        value = _answer(self.loading)
        self.handle = value["handle"]
        weakref.finalize(self, _drop, self.host, self.handle).atexit = False
        return list(value["outputs"]), value["provider"]

    def __call__(self, inputs: Sequence[Any]) -> list[np.ndarray]:
        from exportcheck.numerics.metrics import to_numpy

        arrays = [to_numpy(x) for x in inputs]
        future = self.host.request({"op": "run", "handle": self.handle}, arrays)
        return list(_answer(future))


def _drop(host: _Host, handle: int) -> None:
    if host.dead is None:
        host.request({"op": "drop", "handle": handle}, answered=False)


def _drop_loaded(host: _Host, loading: Future[Any]) -> None:
    """Drops a load nobody opened, once it is done."""
    with contextlib.suppress(Exception):  # refused, crashed: nothing was kept
        value = _answer(loading)
        _drop(host, value["handle"])


def _serve(inputs: BinaryIO, outputs: BinaryIO) -> None:
    """The host's loop, until its input ends: requests are read in order, and loads and runs
    go to a small pool, so that a run of one artifact does not wait for the next artifact's
    compilation (which the parent sent first, as soon as the artifact was cleared)."""
    models: dict[int, Runner] = {}
    handles = itertools.count(1)
    write_lock = threading.Lock()
    with ThreadPoolExecutor(_THREADS, "exportcheck-host") as pool:
        while True:
            try:
                header, arrays = read_message(inputs)
            except EOFError:
                return
            if header["op"] == "drop":
                models.pop(header["handle"], None)
                continue
            reply = functools.partial(_reply, outputs, write_lock, models, handles, header, arrays)
            if header["op"] in ("load", "run"):
                pool.submit(reply)
            else:
                reply()


def _reply(
    outputs: BinaryIO,
    write_lock: threading.Lock,
    models: dict[int, Runner],
    handles: Iterator[int],
    header: dict[str, Any],
    arrays: list[np.ndarray],
) -> None:
    """Answers one request, under the id it came with."""
    from exportcheck.errors import first_line

    values: list[np.ndarray] = []
    try:
        answer, values = _handle(models, handles, header, arrays)
    except RuntimeRefused as why:
        answer = {"error": "refused", "message": str(why)}
    except RunnerUnavailable as why:
        answer = {"error": "unavailable", "message": str(why)}
    except Exception as error:
        answer = {"error": "failed", "message": first_line(error)}
    try:
        message = encode_message({**answer, "id": header["id"]}, values)
    except ValueError as error:  # an output no message can carry
        message = encode_message(
            {"error": "failed", "message": first_line(error), "id": header["id"]}
        )
    with write_lock, contextlib.suppress(OSError):  # the parent is gone: nobody waits
        outputs.write(message)
        outputs.flush()


def _handle(
    models: dict[int, Runner],
    handles: Iterator[int],
    header: dict[str, Any],
    arrays: list[np.ndarray],
) -> tuple[dict[str, Any], list[np.ndarray]]:
    """One request's answer: a header, and the arrays of a run. A load's answer names the
    handle its runs and its drop give."""
    from exportcheck.comparison.runtimes import get_runtime

    if header["op"] == "run":
        return {}, models[header["handle"]].run(arrays)
    runtime = get_runtime(header["runtime"])
    runtime = getattr(runtime, "inner", runtime)
    if header["op"] == "load":
        runner = runtime.load(
            header["path"], header["kind"], header["device"], header["option"], None
        )
        handle = next(handles)
        models[handle] = runner
        value = {"handle": handle, "outputs": runner.output_names, "provider": runner.provider}
        return {"value": value}, []
    if header["op"] == "options":
        return {"value": list(runtime.options(header["kind"], header["device"]))}, []
    return {"value": runtime.describe()}, []


def main() -> None:
    # A runtime that prints to stdout must not write into the answers: they get their own
    # descriptor, and stdout goes to stderr.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _serve(sys.stdin.buffer, answers)
    # exportcheck waits for its hosts to end: the collector's last passes over the runtime's
    # objects at teardown would be on its way out (cli.main.main).
    gc.freeze()

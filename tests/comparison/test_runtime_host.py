"""Runtimes in a process of their own: a runtime that dies on an artifact is that runtime's
verdict on it, exportcheck goes on, and the next artifact gets a fresh process; what passes
between the processes is arrays and JSON, never a pickle."""

from __future__ import annotations

import io
import json
import os
import signal
import struct

import numpy as np
import pytest

from exportcheck.comparison.artifact_checks import inspect_and_compare_artifact
from exportcheck.comparison.reference import ModelRun, Tolerances, quiet_progress
from exportcheck.comparison.runtimes import RuntimeCrashed, get_runtime, host
from exportcheck.results.runtimes import CRASHED, RAN
from tests.conftest import build_sample

openvino_installed = pytest.mark.skipif(
    not get_runtime("openvino").installed(),
    reason="openvino is not installed (pip install 'exportcheck[openvino]')",
)


def _kill_host(name: str, how: signal.Signals) -> None:
    process = host._HOSTS[name].process
    os.kill(process.pid, how)
    process.wait(timeout=30)


@openvino_installed
def test_a_host_that_dies_fails_what_it_was_given_and_the_next_load_starts_a_fresh_one(
    sample_exports,
):
    import torch

    path = sample_exports[("cnn", "eval", "onnx-legacy")]
    openvino = get_runtime("openvino")
    inputs = build_sample("cnn")[1]
    runner = openvino.load(path, "onnx", "cpu", "CPU", None)
    first = runner.run(inputs)
    before = host._HOSTS["openvino"].process.pid
    assert before != os.getpid()

    _kill_host("openvino", signal.SIGSEGV)
    with pytest.raises(RuntimeCrashed, match=r"^OpenVINO crashed \(killed by SIGSEGV"):
        runner.run(inputs)

    again = openvino.load(path, "onnx", "cpu", "CPU", None)
    assert host._HOSTS["openvino"].process.pid != before
    np.testing.assert_array_equal(again.run(inputs)[0], first[0])
    assert torch.is_tensor(inputs[0])  # the caller's inputs are passed, not consumed


@openvino_installed
def test_a_runtime_crashing_on_an_artifact_is_its_verdict_beside_the_others(sample_exports):
    path = sample_exports[("cnn", "eval", "onnx")]
    model, inputs = build_sample("cnn")
    ctx = ModelRun(model.eval(), inputs, "cnn", Tolerances(), False, quiet_progress)
    openvino = get_runtime("openvino")
    runtimes = (get_runtime("onnxruntime"), openvino)
    openvino.prefetch(path, "onnx", ["cpu"])  # what the check sends, then the process dies
    _kill_host("openvino", signal.SIGKILL)

    outcome = inspect_and_compare_artifact(
        ctx, path, "onnx", ["cpu"], dynamic_batch=True, artifact_label=path, runtimes=runtimes
    )

    statuses = {run.configuration: run.status for run in outcome.runs}
    assert statuses == {
        "onnxruntime/CPU/cpu/disable_all": RAN,
        "onnxruntime/CPU/cpu/default": RAN,
        "openvino/CPU/cpu": CRASHED,
    }
    crash = next(f for f in outcome.findings if f.rule == "runtime-refusal")
    assert crash.message.startswith("OpenVINO crashes on this artifact (onnx on openvino/CPU/cpu)")
    assert "killed by SIGKILL" in crash.message
    assert all(c.passed for c in outcome.comparisons)

    again = inspect_and_compare_artifact(
        ctx, path, "onnx", ["cpu"], dynamic_batch=True, artifact_label=path, runtimes=runtimes
    )
    assert {run.status for run in again.runs} == {RAN}
    assert not again.findings


def test_arrays_pass_with_their_dtype_and_shape():
    import ml_dtypes

    arrays = [
        np.arange(6, dtype=np.float32).reshape(2, 3),
        np.array([True, False]),
        np.arange(4, dtype=np.int64).reshape(2, 1, 2)[:, :, ::-1],
        np.ones((2, 2), dtype=ml_dtypes.bfloat16),
        np.zeros((0, 3), dtype=np.float16),
    ]
    stream = io.BytesIO()
    host.write_message(stream, {"op": "run", "id": 7}, arrays)
    stream.seek(0)
    header, back = host.read_message(stream)
    assert header == {"op": "run", "id": 7}
    for sent, received in zip(arrays, back):
        assert received.dtype == sent.dtype and received.shape == sent.shape
        np.testing.assert_array_equal(received.astype(np.float64), sent.astype(np.float64))


@pytest.mark.parametrize("dtype", ["object", "O", "V8", "<U3", "datetime64[s]"])
def test_an_answer_never_unpickles_or_builds_arbitrary_dtypes(dtype):
    header = json.dumps({"id": 1, "arrays": [[dtype, [1]]]}).encode()
    frame = (
        struct.pack("<I", len(header)) + header + struct.pack("<Q", 8) + b"\x80\x04N." + b"\0" * 4
    )
    with pytest.raises((ValueError, TypeError)):
        host.read_message(io.BytesIO(frame))
    with pytest.raises(ValueError):
        host.write_message(io.BytesIO(), {}, [np.array([object()], dtype=object)])


def test_a_truncated_answer_is_the_end_of_the_host():
    stream = io.BytesIO()
    host.write_message(stream, {"id": 1}, [np.ones(4, np.float32)])
    with pytest.raises(EOFError):
        host.read_message(io.BytesIO(stream.getvalue()[:-3]))


@openvino_installed
def test_a_host_that_dies_before_any_artifact_reached_it_blames_none(
    sample_exports,
):
    path = sample_exports[("cnn", "eval", "onnx-legacy")]
    model, inputs = build_sample("cnn")
    ctx = ModelRun(model.eval(), inputs, "cnn", Tolerances(), False, quiet_progress)
    openvino = get_runtime("openvino")
    host.close_hosts()
    openvino.warm_up()
    _kill_host("openvino", signal.SIGKILL)

    outcome = inspect_and_compare_artifact(
        ctx,
        path,
        "onnx-legacy",
        ["cpu"],
        dynamic_batch=True,
        artifact_label=path,
        runtimes=(openvino,),
    )
    assert [run.status for run in outcome.runs] == [RAN]
    assert not outcome.findings


@openvino_installed
def test_warming_up_after_the_hosts_ended_starts_a_fresh_one_and_has_it_import_the_runtime():
    openvino = get_runtime("openvino")
    openvino.warm_up()
    assert openvino.options("onnx", "cpu")[0] == "CPU"
    ended = host._HOSTS["openvino"]
    host.close_hosts()

    openvino.warm_up()  # what the next validate does first, before any artifact exists

    fresh = host._HOSTS["openvino"]
    assert fresh is not ended and fresh.process.poll() is None
    asked_of, answer = openvino._options[("onnx", "cpu")]
    assert asked_of is fresh
    assert answer.result(timeout=60)[0]["value"][0] == "CPU"


@openvino_installed
def test_a_host_is_seen_dead_even_while_something_else_holds_its_answers_open(sample_exports):
    path = sample_exports[("cnn", "eval", "onnx-legacy")]
    inputs = build_sample("cnn")[1]
    runner = get_runtime("openvino").load(path, "onnx", "cpu", "CPU", None)
    process = host._HOSTS["openvino"].process
    # What a child the host forked would hold: the write end of the host's answers.
    answers = [
        os.open(f"/proc/{process.pid}/fd/{fd}", os.O_WRONLY)
        for fd in os.listdir(f"/proc/{process.pid}/fd")
        if os.readlink(f"/proc/{process.pid}/fd/{fd}") == os.readlink(f"/proc/{process.pid}/fd/1")
    ]
    try:
        _kill_host("openvino", signal.SIGKILL)
        with pytest.raises(RuntimeCrashed, match=r"killed by SIGKILL"):
            runner.run(inputs)
    finally:
        for fd in answers:
            os.close(fd)


@openvino_installed
def test_openvino_run_through_exportcheck_writes_nothing_under_home_and_sends_nothing(
    sample_exports, tmp_path
):
    """`import openvino` alone writes ~/intel/openvino_ga_cid and ~/intel/stats and forks a
    process that sends an event to Google Analytics."""
    import subprocess
    import sys

    home = tmp_path / "home"
    home.mkdir()
    script = (
        "import sys\n"
        "from exportcheck.comparison.runtimes import get_runtime\n"
        "from tests.conftest import build_sample\n"
        "openvino = get_runtime('openvino')\n"
        "runner = openvino.load(sys.argv[1], 'onnx', 'cpu', 'CPU', None)\n"
        "print(openvino.describe(), runner.run(build_sample('cnn')[1])[0].shape)\n"
    )
    path = sample_exports[("cnn", "eval", "onnx-legacy")]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run(
        [sys.executable, "-c", script, path],
        env={**os.environ, "HOME": str(home), "CI": ""},
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OpenVINO ")
    assert list(home.iterdir()) == []

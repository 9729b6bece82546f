"""Sharding and worker processes: same findings as in-process, a crash or a hang costs one target."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from exportcheck.errors import EXIT_INPUT, EXIT_INTERNAL, EXIT_TIMEOUT, InputSpecError
from exportcheck.pipeline.parallel import run_targets, select_shard, shard_of

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = str(ROOT / "sample_models")
CNN = f"{SAMPLES}/cnn.py:build"
# What parallel runs do with targets does not depend on the runtimes: ONNX Runtime and torch
# stand for all of them.
FAST = {
    "formats": ["onnx-legacy", "torchscript-trace"],
    "devices": "cpu",
    "runtimes": ["onnxruntime", "torch"],
}


def write_target(folder: Path, name: str, body: str) -> str:
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return f"{path}:build"


def finding_keys(report):
    return {(f.subject, f.rule, f.location.module, f.severity) for f in report.findings}


def no_workers_left() -> bool:
    return not multiprocessing.active_children()


# --- select_shard ---------------------------------------------------------------------------

SPECS = [f"models/m{i:02d}.py:build" for i in range(11)]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 11, 13])
def test_shards_are_disjoint_and_cover_everything(count):
    shards = [select_shard(SPECS, f"{i}/{count}") for i in range(1, count + 1)]
    everything = [spec for shard in shards for spec in shard]
    assert sorted(everything) == sorted(SPECS)
    assert len(everything) == len(set(everything))


def test_shards_do_not_depend_on_the_order_given():
    shuffled = SPECS[5:] + SPECS[:5]
    shuffled.reverse()
    for i in (1, 2, 3):
        assert select_shard(shuffled, f"{i}/3") == select_shard(SPECS, f"{i}/3")


def test_adding_a_target_moves_no_other_to_another_shard():
    grown = [*SPECS, "models/new_model.py:build"]
    for i in range(1, 4):
        before, after = select_shard(SPECS, f"{i}/3"), select_shard(grown, f"{i}/3")
        assert [spec for spec in after if spec in SPECS] == before


def test_no_shard_keeps_every_target_in_order():
    assert select_shard(SPECS[::-1], None) == SPECS[::-1]


@pytest.mark.parametrize("shard", ["0/2", "3/2", "a/b", "1", "", "1/0", "-1/2", "1/2/3"])
def test_malformed_shards_are_refused(shard):
    with pytest.raises(InputSpecError) as caught:
        select_shard(SPECS, shard)
    assert caught.value.subject == "--shard"


def test_run_targets_refuses_bad_settings_before_any_work():
    with pytest.raises(InputSpecError, match="--shard"):
        run_targets(["does/not/exist.py:build"], shard="3/2")
    with pytest.raises(InputSpecError, match="--jobs"):
        run_targets(["does/not/exist.py:build"], jobs=0)
    with pytest.raises(InputSpecError, match="--timeout"):
        run_targets(["does/not/exist.py:build"], timeout=0)


def test_shards_of_a_directory_run_disjoint_targets_that_cover_it():
    subjects = [
        run_targets([SAMPLES], shard=f"{i}/3", command="audit", probes=False).subjects
        for i in (1, 2, 3)
    ]
    everything = [s for part in subjects for s in part]
    assert len(everything) == len(set(everything)) == 7
    assert [sorted(part) for part in subjects] == [
        sorted(s for s in everything if shard_of(s, 3) == i) for i in (1, 2, 3)
    ]
    unused = next(i for i in range(1, 51) if all(shard_of(s, 50) != i for s in everything))
    empty = run_targets([SAMPLES], shard=f"{unused}/50", command="audit", probes=False)
    assert (empty.subjects, empty.exit_code()) == ((), 0)  # more CI jobs than targets


# --- worker processes -----------------------------------------------------------------------


def test_two_jobs_find_what_one_job_finds():
    steps: list[str] = []
    serial = run_targets([SAMPLES], **FAST)
    parallel = run_targets([SAMPLES], jobs=2, progress=steps.append, **FAST)
    assert parallel.subjects == serial.subjects  # target order, whatever finished first
    assert len(serial.subjects) == 7
    assert finding_keys(parallel) == finding_keys(serial)
    assert parallel.findings  # the bad samples do find something
    assert not parallel.errors
    assert parallel.exit_code() == serial.exit_code() == 1
    done = [s for s in steps if " done " in s]
    assert [s.split()[0] for s in done] == [f"[{k}/7]" for k in range(1, 8)]
    assert {s.split()[-1] for s in done} == set(serial.subjects)
    assert len(steps) > len(done)  # the workers' own steps came through too
    assert no_workers_left()


@pytest.mark.parametrize(
    ("body", "message", "code"),
    [
        (
            "import os\ndef build():\n    os._exit(7)\n",
            "worker crashed (exit code 7)",
            EXIT_INTERNAL,
        ),
        (
            "import ctypes\ndef build():\n    ctypes.string_at(0)\n",
            "worker crashed (exit code -11, SIGSEGV)",
            EXIT_INTERNAL,
        ),
        # An exit the target asks for is the target's input problem, not a crash.
        ("def build():\n    raise SystemExit(5)\n", "build() called sys.exit(5)", EXIT_INPUT),
    ],
    ids=["os-exit", "segfault", "system-exit"],
)
def test_a_crashing_worker_costs_its_target_only(tmp_path, body, message, code):
    crasher = write_target(tmp_path, "crasher", body)
    report = run_targets([crasher, CNN], jobs=2, **FAST)
    assert report.subjects == (crasher, CNN)
    [problem] = report.errors
    assert problem.subject == crasher
    assert problem.message == message
    assert problem.exit_code == code
    assert report.exit_code() == code
    assert any(c.subject == CNN for c in report.comparisons)  # the other target was validated
    assert no_workers_left()


PID_WRITER = """\
import os, sys
sys.path.insert(0, {samples!r})
import cnn

def build():
    with open({record!r}, "a") as handle:
        handle.write(f"{{os.getpid()}}\\n")
    return cnn.build()
"""


def test_a_worker_takes_target_after_target_and_a_crash_starts_a_fresh_one(tmp_path):
    record = tmp_path / "pids.txt"
    writers = [
        write_target(tmp_path, f"writer{i}", PID_WRITER.format(samples=SAMPLES, record=str(record)))
        for i in range(3)
    ]
    crasher = write_target(tmp_path, "crasher", "import os\ndef build():\n    os._exit(7)\n")
    options = {"command": "audit", "probes": False, "timeout": 120}
    report = run_targets([writers[0], writers[1], crasher, writers[2]], jobs=1, **options)
    assert report.subjects == (writers[0], writers[1], crasher, writers[2])
    [problem] = report.errors
    assert (problem.subject, problem.message) == (crasher, "worker crashed (exit code 7)")
    first, second, after_crash = record.read_text().split()
    assert first == second  # torch imported once for both
    assert after_crash != first  # the crash ended that worker; a fresh one took the rest
    assert no_workers_left()


def test_a_hanging_target_times_out_quickly(tmp_path):
    sleeper = write_target(tmp_path, "sleeper", "import time\ndef build():\n    time.sleep(60)\n")
    started = time.monotonic()
    report = run_targets([sleeper], timeout=3, **FAST)
    elapsed = time.monotonic() - started
    [problem] = report.errors
    assert (problem.subject, problem.message) == (sleeper, "timed out after 3 s")
    assert problem.exit_code == EXIT_TIMEOUT == report.exit_code()
    assert problem.error == "TargetTimeoutError"
    assert elapsed < 20
    assert no_workers_left()


INTERRUPTED = """\
import multiprocessing, sys
from exportcheck.pipeline.parallel import run_targets

def progress(step):
    pids = " ".join(str(p.pid) for p in multiprocessing.active_children())
    print(f"{step} | {pids}", file=sys.stderr, flush=True)

if __name__ == "__main__":
    try:
        run_targets(sys.argv[1:], jobs=2, progress=progress, devices="cpu")
    except KeyboardInterrupt:
        sys.exit(130)
"""


def test_ctrl_c_ends_every_worker_and_reraises(tmp_path):
    sleepers = [
        write_target(tmp_path, f"sleeper{i}", "import time\ndef build():\n    time.sleep(60)\n")
        for i in (1, 2)
    ]
    script = tmp_path / "interrupted.py"
    script.write_text(INTERRUPTED)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = subprocess.Popen(
        [sys.executable, str(script), *sleepers],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(scratch)},
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a process group of its own, as a terminal's Ctrl-C reaches
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        building: set[str] = set()
        while len(building) < 2:
            line = proc.stderr.readline()
            assert line, "the run ended before both workers were building"
            step, _, pids = line.partition(" | ")
            if step.endswith(": build"):
                building.add(step)
                workers = [int(pid) for pid in pids.split()]
        assert len(workers) == 2
        started = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130  # KeyboardInterrupt reached the caller
    assert time.monotonic() - started < 10
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not list(scratch.iterdir())  # the workers' scratch folders are gone


def test_workers_keep_the_parents_stdout_for_the_report(tmp_path, capfd):
    chatty = write_target(
        tmp_path,
        "chatty",
        f"""\
        import sys
        sys.path.insert(0, {SAMPLES!r})
        import cnn

        def build():
            print("hello from build")
            return cnn.build()
        """,
    )
    report = run_targets([chatty], timeout=60, command="audit", probes=False)
    assert report.subjects == (chatty,)
    assert not report.errors
    out, err = capfd.readouterr()
    assert "hello from build" not in out
    assert "hello from build" in err


# --- processes detached from a worker ---------------------------------------------------------

# Starts a grandchild in a session of its own, prints its pid, and leaves it an orphan.
DAEMON = """
import os, sys, time
read, write = os.pipe()
if os.fork() == 0:
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.write(write, str(os.getpid()).encode())
    time.sleep(300)
    os._exit(0)
print(os.read(read, 32).decode(), flush=True)
"""

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")


def subreaper() -> int:
    import ctypes

    value = ctypes.c_int(-1)
    ctypes.CDLL(None, use_errno=True).prctl(37, ctypes.byref(value), 0, 0, 0)
    return value.value


def daemon() -> int:
    done = subprocess.run([sys.executable, "-c", DAEMON], capture_output=True, text=True)
    return int(done.stdout)


def parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except FileNotFoundError:
        return None


@linux_only
def test_strays_are_ended_and_reaped_and_earlier_children_kept():
    from exportcheck.pipeline.parallel import _strays_ended

    earlier = subprocess.Popen(["sleep", "60"])
    try:
        with _strays_ended(True):
            assert subreaper() == 1
            stray = daemon()
            assert parent_of(stray) == os.getpid()  # reparented here, not to init
        assert parent_of(stray) is None  # ended and reaped: not even a zombie
        assert subreaper() == 0
        assert earlier.poll() is None
    finally:
        earlier.kill()
        earlier.wait()


@linux_only
def test_without_the_request_nothing_changes_for_the_caller():
    from exportcheck.pipeline.parallel import _strays_ended

    with _strays_ended(False):
        assert subreaper() == 0
        stray = daemon()
    try:
        assert parent_of(stray) not in (None, os.getpid())
    finally:
        os.kill(stray, signal.SIGKILL)

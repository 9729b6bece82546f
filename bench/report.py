"""Renders benchmark results as Markdown (printed, and written to docs/benchmarks.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from measure import Measurement
from synth import Input
from targets import Target

FLOOR = "protobuf floor"  # the row every inspect ratio is taken against
ONNX_LOAD_FLOOR = "onnx.load floor"
VALIDATE_FLOOR = "floor"


@dataclass
class FileResult:
    """Every tool measured on one generated ONNX file; the floor comes first."""

    input: Input
    tools: dict[str, Measurement]


@dataclass
class ModelResult:
    """validate, its floor and the verify_onnx_program anchor on one model."""

    name: str
    tools: dict[str, Measurement]
    phases: dict[str, dict[str, float]] = field(default_factory=dict)
    forwards: dict[str, Any] | str | None = None


@dataclass
class Results:
    command: str
    facts: dict[str, str]
    files: list[FileResult] = field(default_factory=list)
    startup: list[Measurement] = field(default_factory=list)
    imports: list[tuple[str, dict[str, bool] | str]] = field(default_factory=list)
    import_times: list[tuple[str, float]] = field(default_factory=list)
    mixed: FileResult | None = None
    archives: list[FileResult] = field(default_factory=list)
    archives_in_process: list[Any] = field(default_factory=list)
    models: list[ModelResult] | None = None
    zoo: list[Measurement] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    profiles: list[tuple[str, str]] = field(default_factory=list)


def _mib(size: float) -> str:
    return f"{size / 2**20:,.1f} MiB"


def _num(value: float | None, fmt: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{fmt}}{suffix}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _vs_floor(tool: Measurement, floor: Measurement) -> list[str]:
    """Time ratio, memory ratio and memory difference against the floor."""
    time_ratio = mem_ratio = delta = None
    if tool.seconds is not None and floor.seconds:
        time_ratio = tool.seconds / floor.seconds
    if tool.rss_mib is not None and floor.rss_mib:
        mem_ratio = tool.rss_mib / floor.rss_mib
        delta = tool.rss_mib - floor.rss_mib
    return [_num(time_ratio, ".2f", "x"), _num(mem_ratio, ".2f", "x"), _num(delta, "+.1f")]


def _measurement_row(name: str, tool: Measurement, floor: Measurement | None) -> list[str]:
    compared = _vs_floor(tool, floor) if floor is not None else ["-", "-", "-"]
    status = tool.status
    if status != "ok" and tool.runs and tool.runs[-1].error:
        status += f": {tool.runs[-1].error[:120]}"
    return [
        name,
        str(len(tool.runs)),
        _num(tool.seconds, ".3f"),
        compared[0],
        _num(tool.rss_mib, ".1f"),
        compared[1],
        compared[2],
        status.replace("|", "/"),
    ]


MEASURE_HEADER = ["runs", "median s", "x floor", "peak RSS MiB", "x floor RSS", "Δ RSS MiB"]


def _inspect_section(results: Results) -> list[str]:
    header = ["input", "nodes", "tool", *MEASURE_HEADER, "status"]
    rows = []
    for result in results.files:
        floor = result.tools[FLOOR]
        for tool_name, tool in result.tools.items():
            row = _measurement_row(tool_name, tool, floor)
            rows.append([result.input.label, f"{result.input.nodes:,}", *row])
    files = [
        f"- `{r.input.label}`: {r.input.nodes:,} nodes, {_mib(r.input.file_bytes)} protobuf"
        + (f", {_mib(r.input.external_bytes)} external data" if r.input.external_bytes else "")
        for r in results.files
    ]
    return ["## inspect on ONNX files", "", *files, "", *_table(header, rows), ""]


HEAVY_MODULES = ("torch", "onnxruntime", "onnx", "onnx.helper", "ml_dtypes", "numpy", "onnxscript")


def _mixed_section(results: Results) -> list[str]:
    mixed = results.mixed
    if mixed is None:
        return []
    floor = mixed.tools[FLOOR]
    header = ["tool", *MEASURE_HEADER, "status"]
    rows = [_measurement_row(name, tool, floor) for name, tool in mixed.tools.items()]
    return [
        f"## inspect on a folder of {mixed.input.label}, one process",
        "",
        f"- {mixed.input.label} in one folder: {mixed.input.nodes:,} nodes, "
        f"{_mib(mixed.input.file_bytes)} in all: `.onnx` of 1k to 10k nodes, and traced, "
        "scripted and exported `.pt`/`.pt2` of small models (`synth.make_mixed_folder`)",
        "- the floor parses and walks every ONNX file and reads every code, pickle and JSON "
        "member of every archive, in one process, as `exportcheck inspect FOLDER` does",
        *_per_size(mixed),
        "",
        *_table(header, rows),
        "",
    ]


def _per_size(result: FileResult) -> list[str]:
    tool = result.tools.get("exportcheck")
    if tool is None or tool.seconds is None:
        return []
    mib = result.input.file_bytes / 2**20
    files = int(result.input.label.split()[0])
    return [
        f"- exportcheck: {tool.seconds / mib * 1000:.1f} ms per MiB, "
        f"{tool.seconds / files * 1000:.1f} ms per file"
    ]


def _archives_section(results: Results) -> list[str]:
    if not results.archives:
        return []
    header = ["input", "nodes", "MiB", "tool", "runs", "median s", "x exportcheck", "status"]
    rows = []
    for result in results.archives:
        ours = result.tools["exportcheck"]
        for name, tool in result.tools.items():
            times = (
                tool.seconds / ours.seconds if tool.seconds is not None and ours.seconds else None
            )
            rows.append(
                [
                    result.input.label,
                    f"{result.input.nodes:,}",
                    f"{result.input.file_bytes / 2**20:.1f}",
                    name,
                    str(len(tool.runs)),
                    _num(tool.seconds, ".3f"),
                    _num(times, ".1f", "x"),
                    tool.status,
                ]
            )
    lines = [
        "## inspect on TorchScript and torch.export archives",
        "",
        "- A scripted and an exported ResNet-50 (torchvision's layout, 25.6M parameters): "
        "`exportcheck inspect FILE` against a process that loads the file with "
        "`torch.jit.load` / `torch.export.load` and loops over every node, the least a "
        "loader-based inspector must do; whole processes, imports included, as every row here.",
        "",
        *_table(header, rows),
        "",
    ]
    if results.archives_in_process:
        lines += [
            "Inside one process with torch already imported (`bench/archives.py`, best of 10): "
            "the readers themselves against the loaders.",
            "",
            *_table(
                ["format", "MiB", "nodes", "exportcheck ms", "loader + loop ms", "speed-up"],
                [
                    [
                        row.format,
                        f"{row.file_mib:.1f}",
                        str(row.nodes),
                        f"{row.exportcheck_s * 1000:.1f}",
                        f"{row.torch_loader_s * 1000:.1f}",
                        f"{row.speedup:.1f}x",
                    ]
                    for row in results.archives_in_process
                ],
            ),
            "",
        ]
    return lines


def _startup_section(results: Results) -> list[str]:
    if not results.startup:
        return []
    base = results.startup[0]
    rows = [_measurement_row(m.command.label, m, base) for m in results.startup]
    header = ["command", *MEASURE_HEADER, "status"]
    header[3] = f"x `{base.command.label}`"
    header[5] = f"x `{base.command.label}` RSS"
    lines = ["## Start-up cost", "", *_table(header, rows), ""]
    if results.imports:
        check_rows = []
        for label, loaded in results.imports:
            if isinstance(loaded, str):
                check_rows.append([label, loaded, "", "", ""])
            else:
                marks = ["yes" if loaded.get(m) else "no" for m in HEAVY_MODULES]
                check_rows.append([label, *marks])
        header = ["command", *(f"imports {m}" for m in HEAVY_MODULES)]
        lines += ["Heavy modules loaded by each command (sys.modules at exit):", ""]
        lines += [*_table(header, check_rows), ""]
    if results.import_times:
        rows = [[name, f"{ms:.1f}"] for name, ms in results.import_times]
        lines += ["Slowest top-level imports of one `exportcheck inspect` run (`-X importtime`):"]
        lines += ["", *_table(["module", "cumulative ms"], rows), ""]
    return lines


def _validate_section(results: Results) -> list[str]:
    if results.models is None:
        return ["## validate", "", "Skipped (`--skip-validate`).", ""]
    header = ["model", "tool", *MEASURE_HEADER, "status"]
    rows, phase_lines = [], []
    for model in results.models:
        floor = model.tools[VALIDATE_FLOOR]
        for tool_name, tool in model.tools.items():
            rows.append([model.name, *_measurement_row(tool_name, tool, floor)])
        for tool_name, phases in model.phases.items():
            steps = ", ".join(f"{step} {sec:.2f}s" for step, sec in phases.items())
            phase_lines.append(f"- {model.name} {tool_name}: {steps}")
    lines = ["## validate", "", *_table(header, rows), ""]
    if phase_lines:
        lines += ["Steps inside one run (last run, wall seconds):", "", *phase_lines, ""]
    lines += _forwards_lines(results.models)
    return lines


# Measured with bench/forwards.py on commit 8f5134e, before one run of each batch was shared.
FORWARDS_BEFORE = {
    "resnet18": {"eager": 7, "eager float64": 1, "trace": 3},
    "transformer": {"eager": 7, "eager float64": 1, "trace": 3},
}


def _forwards_lines(models: list[ModelResult]) -> list[str]:
    rows = []
    for model in models:
        now = model.forwards
        before = FORWARDS_BEFORE.get(model.name, {})
        if not isinstance(now, dict):
            rows.append([model.name, "-", "-", "-", str(now or "not counted")])
            continue
        rows.append(
            [
                model.name,
                *(f"{before.get(k, '-')} -> {now.get(k, '-')}" for k in ("eager", "eager float64")),
                f"{before.get('trace', '-')} -> {now.get('trace', '-')}",
                "ok",
            ]
        )
    if not rows:
        return []
    header = ["model", "eager forwards", "float64 forwards", "exporter traces", "status"]
    return [
        "Forward passes through the model in one `validate` (`bench/forwards.py`: a forward "
        "hook on the model; before = commit 8f5134e, after = this run):",
        "",
        *_table(header, rows),
        "",
    ]


def _zoo_section(results: Results) -> list[str]:
    if not results.zoo:
        return []
    base = results.zoo[0]
    rows = [_measurement_row(m.command.label, m, base) for m in results.zoo]
    header = ["command", *MEASURE_HEADER, "status"]
    header[3] = f"x `{base.command.label}`"
    header[5] = f"x `{base.command.label}` RSS"
    return [
        "## validate of a zoo",
        "",
        "The sample models (`sample_models/`) in one `validate`, in one process and in two "
        "worker processes, each worker with its share of torch's threads.",
        "",
        *_table(header, rows),
        "",
    ]


def _targets_section(results: Results) -> list[str]:
    rows = [[t.verdict, t.name, t.margin()] for t in results.targets]
    return ["## Targets", "", *_table(["verdict", "target", "measured"], rows), ""]


def _profile_section(results: Results) -> list[str]:
    lines: list[str] = []
    for title, text in results.profiles:
        lines += [f"### {title}", "", "```", text.rstrip(), "```", ""]
    if lines:
        lines = ["## Where exportcheck's time goes (missed targets)", "", *lines]
    return lines


METHOD = """\
Every number is a whole child process (Python start-up and imports included): wall time
from spawn to exit, and that process's own peak RSS (`os.wait4` rusage), both taken by a
small launcher (`bench/spawn.py`, about 10 MiB, which is therefore the smallest RSS it can
report) so the benchmark's own memory does not leak into the children's. Tools run in turn,
round after round, so background noise hits them alike; a tool stops repeating once its runs
took 60 s. Medians over the successful runs. Byte-code caching is on for every tool (as in
an installed package), and a warm-up round runs first. Inputs are generated into a temporary folder:
graphs built with `onnx.helper` in blocks of 50 nodes (Add/Mul/Relu/Identity/LeakyRelu
chains, two Dropouts with constant `training_mode` true or false, a BatchNormalization, an If
with two-node branches, calls to two model-local functions), and a 1,000-node graph whose
eight 256 MiB MatMul weights live in a sparse 2 GiB external-data file. Each floor and
anchor process freezes Python's collector before it ends, as exportcheck's CLI does: the
collector's last passes at interpreter teardown cost about a second once torch has run, and
neither side must pay them.

- **protobuf floor** (every inspect ratio is taken against it): the onnx wheel's generated
  `onnx_ml_pb2` module loaded by file location (onnx/__init__.py, onnx.helper and ml_dtypes
  never run), `ModelProto.ParseFromString` on the file's bytes, and one loop over every node
  of the main graph, its subgraphs and the functions, reading `op_type` and each attribute's
  name and type (`bench/probes.py protobuf-floor`).
- **onnx.load floor**: the same loop after `onnx.load(path, load_external_data=False)`, which
  imports the whole onnx package (`bench/probes.py onnx-load-floor`); the 1M target is
  against it.
- **exportcheck**: `exportcheck inspect PATH --format json --output /dev/null --fail-on never`.
- **polygraphy**: `polygraphy inspect model PATH --show layers` (stdout discarded; it loads
  external data), killed after the anchor timeout.
- **onnx_ir**: `onnx_ir.load(path)` and a walk over every graph and function (not at 1M
  nodes, where it takes half a minute a run and no target uses it).
- **start-up**: `exportcheck --help`, `exportcheck rules` and `exportcheck inspect` of a
  10-node ONNX file must each stay under `python -c pass` + 0.12 s.
- **validate floor**: one process doing the least `validate` must: eval-mode model,
  `torch.onnx.export` (dynamo and legacy), `torch.jit.trace`, `torch.export.export`, an ONNX
  Runtime session per optimization level (disabled, default) on the dynamo file with one run
  each, and three reference forwards. Its two ONNX files are written where `validate` writes
  its temporary artifacts (`/dev/shm` when they fit, as `exportcheck.pipeline.scratch`
  decides). `validate` does more than this floor (TorchScript
  scripting, behavioural probes, comparisons of every artifact), so the 1.2x target is the
  room all of that gets. **verify_onnx_program**: dynamo export plus
  `torch.onnx.verification.verify_onnx_program`, in its own process; `validate --formats
  onnx` (the same export, plus the audit, the probes and two ONNX Runtime levels) is held to
  1.0x of it.
- **zoo**: `exportcheck validate sample_models --jobs 2` must reach 1.6x the throughput of
  `--jobs 1` (the time of `--jobs 1` over the time of `--jobs 2`).
- Every target names both sides of its ratio, and a missed target gets a profile below.
- A ratio's verdict is PASS or MISS by the medians, and UNSETTLED when single rounds (each
  round runs every command once, in turn) fall on both sides of the limit: on this shared
  machine a median just past the limit then says little. An unsettled target is profiled too.
- Peak RSS of a command that starts worker processes is the largest single process of its
  tree (rusage counts reaped children by maximum, not by sum).
"""


def render(results: Results) -> str:
    facts = results.facts
    machine = [f"- {key}: {value}" for key, value in facts.items()]
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `{results.command}` on {facts.get('date', '?')}; rerun it to refresh "
        "this page (`sh scripts/dev.sh bench`, or `--quick --skip-validate` for a short check).",
        "",
        "## Machine",
        "",
        *machine,
        "",
        "## Method",
        "",
        METHOD,
        *_targets_section(results),
        *_inspect_section(results),
        *_mixed_section(results),
        *_archives_section(results),
        *_startup_section(results),
        *_validate_section(results),
        *_zoo_section(results),
        *_profile_section(results),
    ]
    return "\n".join(lines).rstrip() + "\n"

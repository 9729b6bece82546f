"""Writes docs/runtimes.md: how each runtime treats a training-mode node, from exportcheck's own
runs of real exports of the sample models. The test suite checks the page matches this output.

Usage: python scripts/runtime_table.py [--write]   (PYTHONPATH=src from a checkout)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "runtimes.md"

# (column title, sample, what the export holds)
CASES = (
    ("Dropout with `training_mode=True`", "bad_functional_dropout", "`F.dropout(x, p)`"),
    (
        "BatchNormalization in training mode",
        "bad_batchnorm_no_running_stats",
        "`track_running_stats=False`",
    ),
    ("clean eval-mode model", "cnn", "Conv-BN-ReLU, Dropout"),
)
FORMATS = ("onnx", "onnx-legacy", "exported-program")

HEADER = """# Runtimes

exportcheck runs each artifact on every installed runtime: ONNX Runtime (at `ORT_DISABLE_ALL`
and its default level, on the CPU and on CUDA with onnxruntime-gpu), OpenVINO (`pip install
'exportcheck[openvino]'`), tract (`pip install 'exportcheck[tract]'`) and torch for TorchScript
and torch.export archives. `--runtimes` (or `runtimes = [...]` in `[tool.exportcheck]`) chooses
among them; a runtime that is not installed is reported as skipped with the extra to install,
and one named there but missing is an input error (exit 2).

Each runtime treats a training-mode node its own way. The table is what each one did in
exportcheck's own runs of the sample models, exported by the dynamo ONNX exporter (`onnx`),
the TorchScript-based one (`onnx-legacy`) and torch.export (`exported-program`). It is
written by `scripts/runtime_table.py`, and the test suite fails when this page and the script's
output disagree. Where a runtime refuses, its refusal is a `runtime-refusal` (EC304) finding
under the problem that explains it ("a consequence of EC101 at head.py:32"); where it
normalizes with the batch's statistics, a `runtime-batch-statistics` (EC306) finding.

"""

FOOTER = """
- *runs it, randomly*: two runs of one input differ (`runtime-nondeterminism`).
- *uses batch statistics*: a sample's output changes when another joins its batch.
- *refuses*: the runtime's own words, on one line.
- A cell names the formats it holds for when the formats disagree.
- *crashes*: the runtime's own process died on the artifact (a segfault, an abort).

OpenVINO and tract are native code that an unusual or hostile artifact can crash. They run in
a process of their own (`python -m exportcheck.comparison.runtimes`, one per runtime), which
exportcheck starts while it audits and exports the model, and which starts compiling each
artifact as soon as the static pass has cleared it (between the exports), while the next
format exports and ONNX Runtime runs the last one; it compiles one artifact while it runs
another. OpenVINO is imported there without its telemetry, which would otherwise write under
the user's home and send an event to Google Analytics (see security.md). When that
process dies, the artifact gets a `runtime-refusal` (EC304) finding that says so ("OpenVINO
crashes on this artifact (...): OpenVINO crashed (killed by SIGSEGV)"), with the signal and
the process's last line of output; the other runtimes' verdicts stand, and the next artifact
gets a fresh process. Only arrays and JSON pass between the processes, never a pickle.
ONNX Runtime, the reference runtime, and torch run in exportcheck's own process.

Each runtime loads an artifact as its own users do. OpenVINO compiles it once, for float32
inference. tract plans it once per input shape, with every input's size and type given
(`set_input_fact`), and reads it without the shapes the exporter stored for intermediate values
(its CLI's `--onnx-ignore-value-info`), which it would refuse to unify with concrete sizes
("Impossible to unify Sym(s77) with Val(3)"). Planned with symbolic sizes instead, tract binds
an LSTM's Scan to batch 1 and refuses the sample LSTM at batch 3 ("Clashing resolution for
expression. batch=3 != 1"); planned per shape, both of its ONNX files match the model at
batch 3 and 5 (within 5e-8).

ONNX Runtime, tract and torch take a file's path as UTF-8 text. A POSIX path may be any bytes
(a folder named in Latin-1); they refuse it ("surrogates not allowed", "incompatible
constructor arguments"), which would read as a verdict on the artifact. Such a file reaches
every runtime through a link in a temporary folder of exportcheck's own: to its folder, where
the external data lies beside the model as before, or to the file when its own name is not
text. A file whose own name is not text and whose external data lies beside it cannot be
reached that way: that is an input error (exit 2) that asks to rename the file.

A refusal that names a node (tract: `(evaluating #7 "/block/Dropout" Dropout)`; OpenVINO: the
value the node computes, `<Node(Dropout): /block/Dropout_output_0>`) is placed at that node:
its module, and for a dynamo export the source line its stack trace records. A refusal of the
node a static finding flags in the same artifact is evidence of that finding's problem. tract
refuses the training-mode BatchNormalization that standardizes a weight (timm's `StdConv2d`,
the legacy export of ResNetV2 BiT): the report says the node computes from weights alone and
its fix line says to fold the artifact's constants (onnxslim, or ONNX Runtime's offline
optimization at `ORT_ENABLE_BASIC`), after which tract runs the model.
"""


def _words(cell, by_rule: set) -> str:
    label = cell.run.runner_label
    if cell.verdict == "refuses":
        return 'refuses: "' + (cell.run.detail or "").split(" (")[0] + '"'
    if cell.verdict in ("crashes", "skipped"):
        return cell.verdict
    if ("runtime-nondeterminism", label) in by_rule:
        return "runs it, randomly"
    if cell.batch_statistics:
        return "uses batch statistics"
    if not any(size.startswith("batch=") for size in cell.run.sizes):
        return f"{cell.verdict} (static batch: one batch size run)"
    return cell.verdict


def _cell(cells: list, findings: list) -> str:
    """One runtime's behaviour on one artifact, in words, from its matrix cells and findings;
    each configuration (an optimization level) named where they disagree."""
    by_rule = {(f.rule, f.location.runtime) for f in findings}
    words = {cell.run.configuration.rsplit("/", 1)[-1]: _words(cell, by_rule) for cell in cells}
    if len(set(words.values())) == 1:
        return next(iter(words.values()))
    return "; ".join(f"{option}: {text}" for option, text in words.items())


def measure() -> dict[str, dict[str, str]]:
    """runtime title (with version) -> case title -> behaviour, per format where they differ."""
    sys.path.insert(0, str(ROOT / "src"))
    import exportcheck
    from exportcheck.comparison.runtimes import RUNTIMES
    from exportcheck.targets.python_targets import build_target

    table: dict[str, dict[str, str]] = {}
    installed = [r for r in RUNTIMES if r.installed()]
    for title, sample, _ in CASES:
        target = build_target(str(ROOT / "sample_models" / f"{sample}.py") + ":build")
        with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder):
            report = exportcheck.validate(
                target.model, target.inputs, formats=FORMATS, devices="cpu", probes=False
            )
        for runtime in installed:
            by_format = {}
            for fmt in FORMATS:
                cells = [
                    c
                    for c in report.runtime_matrix
                    if c.run.runtime == runtime.name and c.run.artifact_format == fmt
                ]
                if cells:
                    by_format[fmt] = _cell(cells, list(report.findings))
            texts = list(dict.fromkeys(by_format.values()))
            if len(texts) == 1:
                text = texts[0]
            else:
                text = "; ".join(f"{fmt}: {words}" for fmt, words in by_format.items())
            row = table.setdefault(runtime.name, {"runtime": runtime.describe()})
            row[title] = text or "-"
    return table


def render(table: dict[str, dict[str, str]]) -> str:
    titles = [title for title, _, _ in CASES]
    lines = [
        "| runtime | " + " | ".join(titles) + " |",
        "|---|" + "---|" * len(titles),
        "| (sample model) | " + " | ".join(f"`{s}`: {what}" for _, s, what in CASES) + " |",
    ]
    for row in table.values():
        cells = [row["runtime"], *(row.get(t, "-").replace("|", "\\|") for t in titles)]
        lines.append("| " + " | ".join(cells) + " |")
    return HEADER + "\n".join(lines) + "\n" + FOOTER


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {PAGE.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):
        page = render(measure())
    if args.write:
        PAGE.write_text(page)
    else:
        sys.stdout.write(page)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Names that try to rewrite the screen: terminal escape sequences and bidi controls in node
names, initializer names, exporter metadata and file names. Every report meant for people
(text, Markdown, JUnit, SARIF messages) and every progress line shows them as visible escapes;
JSON keeps the exact string (real `exportcheck` processes)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from tests.cli.processes import FAST, PLAIN_BUILD, exportcheck, write_target

CLEAR = "\x1b[2J"
RLO = "\u202e"  # right-to-left override
LRI = "\u2066"  # left-to-right isolate
HOSTILE = f"{CLEAR}{RLO}gpj{LRI}x\x9b\u200f"
# What no text for people may hold raw: C0 (but the newlines and tabs of the layout), DEL, C1,
# the bidi controls and marks, and the line and paragraph separators.
RAW = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
SHOWN = ("\\x1b[2J", "\\u202e", "\\u2066")


def training_dropout(
    path: Path, *, node: str = "/drop/Dropout", initializer: str = "train", graph: str = "main"
) -> onnx.ModelProto:
    """A one-node graph with a Dropout whose training_mode is a constant true."""
    ratio = helper.make_tensor("ratio", TensorProto.FLOAT, [], [0.5])
    train = helper.make_tensor(initializer, TensorProto.BOOL, [], [True])
    dropout = helper.make_node("Dropout", ["x", "ratio", initializer], ["y"], name=node)
    graph_proto = helper.make_graph(
        [dropout],
        graph,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
        initializer=[ratio, train],
    )
    model = helper.make_model(graph_proto, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, str(path))
    return model


def hostile_node_names(folder: Path) -> tuple[Path, str]:
    """The node's module path and the initializer the rule's message names are hostile."""
    path = folder / "names.onnx"
    training_dropout(
        path,
        node=f"/enc{HOSTILE}/Dropout",
        initializer=f"train{HOSTILE}",
        graph=f"g{HOSTILE}",
    )
    return path, HOSTILE


def hostile_metadata(folder: Path) -> tuple[Path, str]:
    """The dynamo exporter's metadata: a hostile module scope and a hostile source file."""
    path = folder / "metadata.onnx"
    model = training_dropout(path)
    node = model.graph.node[0]
    scopes = ["", f"enc{HOSTILE}", "drop"]
    helper.set_metadata_props(
        node,
        {
            "pkg.torch.onnx.name_scopes": repr(scopes),
            "pkg.torch.onnx.stack_trace": f'File "model{CLEAR}{RLO}.py", line 7, in forward',
        },
    )
    onnx.save(model, str(path))
    return path, HOSTILE


def hostile_file_name(folder: Path) -> tuple[Path, str]:
    name = f"m{CLEAR}{RLO}{LRI}x.onnx"
    path = folder / name
    training_dropout(path)
    return path, name


def strings(data: object) -> list[str]:
    """Every string in decoded JSON, keys too."""
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        return [s for key, value in data.items() for s in (key, *strings(value))]
    if isinstance(data, list):
        return [s for item in data for s in strings(item)]
    return []


def assert_escaped(text: str, where: str) -> None:
    raw = sorted({f"U+{ord(c):04X}" for c in RAW.findall(text)})
    assert not raw, f"{where} holds raw {', '.join(raw)}"


@pytest.mark.parametrize(
    "build", [hostile_node_names, hostile_metadata, hostile_file_name], ids=lambda b: b.__name__
)
def test_reports_for_people_escape_what_json_keeps(tmp_path: Path, build) -> None:  # noqa: ANN001
    path, hostile = build(tmp_path)
    reports = {fmt: tmp_path / f"report.{fmt}" for fmt in ("markdown", "junit", "sarif", "json")}
    outputs = [arg for fmt, file in reports.items() for arg in ("-o", f"{fmt}={file}")]
    done = exportcheck("inspect", path, "--verbose", *outputs, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    shown = {"text": done.stdout, "stderr": done.stderr}
    shown |= {fmt: reports[fmt].read_text() for fmt in ("markdown", "junit")}
    for where, text in shown.items():
        assert_escaped(text, where)
    for where in ("text", "markdown", "junit"):
        assert all(escape in shown[where] for escape in SHOWN), (where, shown[where])

    sarif = json.loads(reports["sarif"].read_text())
    messages = [r["message"]["text"] for r in sarif["runs"][0]["results"]]
    assert messages
    for message in messages:
        assert_escaped(message, "sarif message")
    if build is not hostile_file_name:  # a file name is the result's location, not its message
        assert all(escape in "".join(messages) for escape in SHOWN), messages

    data = json.loads(reports["json"].read_text())
    assert any(hostile in text for text in strings(data)), "JSON must keep the exact name"


def test_junit_names_show_escapes_and_parse_as_xml(tmp_path: Path) -> None:
    from xml.etree import ElementTree

    path, _ = hostile_node_names(tmp_path)
    done = exportcheck("inspect", path, "--format", "junit", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    case = ElementTree.fromstring(done.stdout).find(".//testcase")
    assert case is not None
    assert "[enc\\x1b[2J\\u202egpj\\u2066x\\x9b\\u200f]" in case.get("name", "")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_progress_lines_escape_a_target_file_name(tmp_path: Path, jobs: str) -> None:
    """In process (`--jobs 1`) and from workers (`--jobs 2`): stderr is a pipe here, so each
    step is a line; the target's name holds ESC and the bidi controls."""
    hostile = write_target(tmp_path, f"t{CLEAR}{RLO}{LRI}x", PLAIN_BUILD)
    plain = write_target(tmp_path, "plain", PLAIN_BUILD)
    junit = tmp_path / "report.xml"
    done = exportcheck(
        "validate",
        f"{hostile}:build",
        f"{plain}:build",
        *FAST,
        "--jobs",
        jobs,
        "-o",
        f"junit={junit}",
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    progress = [line for line in done.stderr.splitlines() if line.startswith("exportcheck: ")]
    named = [line for line in progress if "t\\x1b[2J\\u202e\\u2066x.py" in line]
    assert named, done.stderr
    for where, text in {"stderr": done.stderr, "text": done.stdout}.items():
        assert_escaped(text, where)
    assert_escaped(junit.read_text(), "junit")
    assert "t\\x1b[2J\\u202e\\u2066x.py" in done.stdout


def test_an_error_line_escapes_the_target_name(tmp_path: Path) -> None:
    broken = write_target(tmp_path, f"t{CLEAR}{RLO}x", "def build():\n    raise ValueError('no')\n")
    done = exportcheck("validate", f"{broken}:build", *FAST, "--quiet", cwd=tmp_path)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("exportcheck: error:")]
    assert errors and all("t\\x1b[2J\\u202ex.py" in line for line in errors), done.stderr
    assert_escaped(done.stderr, "stderr")

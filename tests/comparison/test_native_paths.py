"""An artifact whose path is not UTF-8 (a POSIX folder or file named in Latin-1) runs on every
installed runtime, with its external data beside it, and the report names the user's path."""

from __future__ import annotations

import os
import sys

import pytest
import torch

import exportcheck
from exportcheck.comparison.runtimes import RUNTIMES
from exportcheck.comparison.runtimes.native_paths import opens_as_text, runtime_path
from exportcheck.results.runtimes import RAN

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"),
    reason="file names that are not UTF-8 exist on Linux's file systems (APFS refuses them, and "
    "Windows names are text)",
)
LATIN_1 = os.fsdecode(b"caf\xe9")


def built() -> tuple[torch.nn.Module, tuple[torch.Tensor]]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    return model.eval(), (torch.randn(2, 6),)


def export_to(folder: str, name: str, *, external: bool) -> str:
    """The model exported where torch can write, then moved to a name it cannot."""
    import onnx

    model, inputs = built()
    plain = os.path.join(folder, "plain")
    os.makedirs(plain)
    torch.onnx.export(model, inputs, os.path.join(plain, "m.onnx"), dynamo=False)
    if external:
        proto = onnx.load(os.path.join(plain, "m.onnx"))
        onnx.save_model(
            proto,
            os.path.join(plain, "m.onnx"),
            save_as_external_data=True,
            location="weights.bin",
            size_threshold=0,
        )
    target_folder = os.path.join(folder, LATIN_1) if name == "m.onnx" else folder
    os.makedirs(target_folder, exist_ok=True)
    for entry in os.listdir(plain):
        os.replace(os.path.join(plain, entry), os.path.join(target_folder, entry))
    os.rmdir(plain)
    path = os.path.join(target_folder, name)
    os.replace(os.path.join(target_folder, "m.onnx"), path)
    return path


@pytest.mark.parametrize(
    "name, external",
    [("m.onnx", True), (f"{LATIN_1}.onnx", False)],
    ids=["latin-1-folder-external-data", "latin-1-file-name"],
)
def test_every_installed_runtime_runs_an_artifact_whose_path_is_not_utf8(tmp_path, name, external):
    path = export_to(str(tmp_path), name, external=external)
    assert not opens_as_text(path)
    before = sorted(os.listdir(os.path.dirname(path)))
    model, inputs = built()
    report = exportcheck.compare(path, model, inputs, devices="cpu")
    assert report.exit_code() == 0, [f.message for f in report.findings]
    installed = {r.name for r in RUNTIMES if "onnx" in r.kinds and r.installed()}
    ran = {run.runtime for run in report.runtime_runs if run.status == RAN}
    assert ran == installed, [(r.runtime, r.status, r.detail) for r in report.runtime_runs]
    assert {run.artifact for run in report.runtime_runs} == {path}
    assert {c.artifact for c in report.comparisons} == {path}
    assert sorted(os.listdir(os.path.dirname(path))) == before


def test_the_link_is_gone_afterwards_and_a_text_path_is_given_as_it_is(tmp_path):
    path = export_to(str(tmp_path), "m.onnx", external=True)
    with runtime_path(path, "onnx") as openable:
        assert opens_as_text(openable)
        assert sorted(os.listdir(os.path.dirname(openable))) == ["m.onnx", "weights.bin"]
        links = os.path.dirname(os.path.dirname(openable))
    assert not os.path.exists(links)
    plain = str(tmp_path / "plain.onnx")
    with runtime_path(plain, "onnx") as openable:
        assert openable == plain


def test_a_file_name_no_runtime_opens_beside_its_external_data_is_one_line_and_exit_2(tmp_path):
    from tests.cli.processes import PLAIN_BUILD, exportcheck, write_target

    path = export_to(str(tmp_path), "m.onnx", external=True)
    renamed = os.path.join(os.path.dirname(path), f"{LATIN_1}.onnx")
    os.replace(path, renamed)
    target = write_target(tmp_path, "target", PLAIN_BUILD)
    done = exportcheck("compare", renamed, "--against", f"{target}:build", "--device", "cpu")
    assert done.returncode == 2, done.stderr
    (line,) = [text for text in done.stderr.splitlines() if "error" in text]
    assert "file name is not UTF-8" in line and "rename the file" in line


def test_a_repair_is_proved_and_compared_where_the_path_is_not_utf8(tmp_path):
    """`exportcheck fix` of a training-mode export, and `compare AFTER --against BEFORE`, both
    in a Latin-1 folder: ONNX Runtime runs each file in it, and the reports name the user's
    paths."""
    from exportcheck.pipeline.repairing import compare_with_artifact

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 3))
    folder = tmp_path / "plain"
    folder.mkdir()
    torch.onnx.export(
        model.train(),
        (torch.randn(4, 6),),
        str(folder / "train.onnx"),
        dynamo=False,
        training=torch.onnx.TrainingMode.PRESERVE,
        do_constant_folding=False,
    )
    latin = os.path.join(str(tmp_path), LATIN_1)
    os.replace(folder, latin)
    before = os.path.join(latin, "train.onnx")
    after = os.path.join(latin, "fixed.onnx")
    result = exportcheck.fix(before, after)
    assert result.proof_holds, [(s.check, s.passed, s.detail) for s in result.proof]
    assert [s.check for s in result.proof if s.comparisons]  # the runtimes ran it
    assert (result.source, result.output) == (before, after)
    compared = compare_with_artifact(after, before)
    assert compared.ok and compared.comparisons
    assert (compared.after, compared.before) == (after, before)


def test_validate_exports_into_and_runs_from_a_folder_whose_path_is_not_utf8(tmp_path):
    out = os.path.join(str(tmp_path), LATIN_1)
    model, inputs = built()
    report = exportcheck.validate(
        model, inputs, formats=["onnx", "onnx-legacy"], devices="cpu", probes=False, out_dir=out
    )
    assert report.exit_code() == 0, [f.message for f in report.findings]
    installed = {r.name for r in RUNTIMES if "onnx" in r.kinds and r.installed()}
    for fmt in ("onnx", "onnx-legacy"):
        ran = {
            r.runtime for r in report.runtime_runs if r.artifact_format == fmt and r.status == RAN
        }
        assert ran == installed, [(r.runtime, r.status, r.detail) for r in report.runtime_runs]
    artifacts = {r.artifact for r in report.runtime_runs}
    assert {os.path.dirname(a) for a in artifacts} == {out}
    assert sorted(os.listdir(out)) == sorted(os.path.basename(a) for a in artifacts)


TARGET = """
import torch


def build():
    torch.manual_seed(0)
    return torch.nn.Linear(4, 2).eval(), (torch.randn(2, 4),)
"""


def test_a_target_file_and_torch_archives_in_a_folder_whose_path_is_not_utf8(tmp_path):
    """The model's own file there (imported under a name made from its path), and a traced and
    an exported archive beside it, compared on torch."""
    from exportcheck.pipeline.validation import validate_targets

    folder = os.path.join(str(tmp_path), LATIN_1)
    os.makedirs(folder)
    target = os.path.join(folder, "model.py")
    with open(target, "w") as file:
        file.write(TARGET)
    report = validate_targets([f"{target}:build"], formats=("onnx-legacy",), devices="cpu")
    assert report.exit_code() == 0 and report.comparisons, report.errors
    torch.manual_seed(0)
    model, inputs = torch.nn.Linear(4, 2).eval(), (torch.randn(2, 4),)
    traced = os.path.join(folder, "traced.pt")
    torch.jit.trace(model, inputs).save(os.path.join(str(tmp_path), "traced.pt"))
    os.replace(os.path.join(str(tmp_path), "traced.pt"), traced)
    exported = os.path.join(folder, "program.pt2")
    torch.export.save(torch.export.export(model, inputs), os.path.join(str(tmp_path), "p.pt2"))
    os.replace(os.path.join(str(tmp_path), "p.pt2"), exported)
    for path in (traced, exported):
        compared = exportcheck.compare(path, model, inputs, devices="cpu")
        assert compared.exit_code() == 0, [f.message for f in compared.findings]
        assert [(r.runtime, r.status) for r in compared.runtime_runs] == [("torch", RAN)]


def test_an_export_that_fails_on_the_models_code_path_says_so(tmp_path):
    """torch records the file of each module's code in the artifact, and every exporter fails
    on a path that is not UTF-8 with words that do not say so ('error unpacking string as
    utf-8'): the skip names the path and what to do."""
    from exportcheck.pipeline.validation import validate_targets
    from tests.cli.processes import PLAIN_BUILD, write_target

    folder = tmp_path / LATIN_1
    folder.mkdir()
    target = str(write_target(folder, "tiny", PLAIN_BUILD))  # its own class, Tiny
    report = validate_targets(
        [f"{target}:build"], formats=("onnx-legacy", "torchscript-trace"), devices="cpu"
    )
    exports = [s for s in report.skipped if s.step.startswith("export")]
    assert len(exports) == 2, [(s.step, s.reason) for s in report.skipped]
    for skip in exports:
        assert skip.reason.startswith(
            f"the model's code is at a path that is not UTF-8 ({target}), which torch's "
            "exporters cannot record: move or rename it ("
        ), skip.reason

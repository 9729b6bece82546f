"""The chunked parse of TorchScript code gives the trees and positions a whole-file parse gives."""

from __future__ import annotations

import ast
import zipfile

import pytest

from exportcheck.readers.torchscript.code import ChunkParser, ParsedFile, whole_file

from .conftest import drop_path_cnn


@pytest.fixture(scope="module")
def code_files(tmp_path_factory) -> list[tuple[str, str]]:
    import torch

    model, _ = drop_path_cnn()
    path = tmp_path_factory.mktemp("code") / "m.pt"
    torch.jit.script(model.eval()).save(str(path))
    with zipfile.ZipFile(path) as archive:
        return [
            (name, archive.read(name).decode())
            for name in archive.namelist()
            if "/code/" in name and name.endswith(".py")
        ]


def _calls(parsed: ParsedFile) -> dict[str, list[tuple[str, int, int]]]:
    """Every call in every function, with its position in the file and its printed form."""
    found: dict[str, list[tuple[str, int, int]]] = {}
    functions = [(f"{c.name}.{n}", f) for c in parsed.classes for n, f in c.methods.items()]
    functions += list(parsed.functions.items())
    for name, function in functions:
        origin = function.origin
        found[name] = sorted(
            (
                ast.unparse(node.func),
                node.lineno + origin.line_offset,
                node.col_offset + origin.column_offset,
            )
            for node in ast.walk(function.tree)
            if isinstance(node, ast.Call)
        )
    return found


def test_chunks_match_the_whole_file(code_files):
    parser = ChunkParser()
    for name, text in code_files:
        chunked = parser.parse(text, name)
        whole = whole_file(ast.parse(text), name)
        assert [c.name for c in chunked.classes] == [c.name for c in whole.classes], name
        assert _calls(chunked) == _calls(whole), name
        assert any(f.origin.line_offset for c in chunked.classes for f in c.methods.values()) or (
            not chunked.classes
        ), f"{name} was parsed whole, not in chunks"


def test_a_file_off_the_printer_layout_is_parsed_whole(code_files):
    name, text = next((n, t) for n, t in code_files if "class " in t and "\n    return" in t)
    # A tab inside a signature's parentheses is valid Python the printer never writes.
    tabbed = text.replace("\n    ", "\n  \t", 1)
    parsed = ChunkParser().parse(tabbed, name)
    assert _calls(parsed) == _calls(whole_file(ast.parse(tabbed), name))
    assert all(f.origin.line_offset == 0 for c in parsed.classes for f in c.methods.values())
    # A tab that breaks the indentation fails as the whole file does.
    broken = text.replace("\n    return", "\n\treturn", 1)
    with pytest.raises(SyntaxError):
        ast.parse(broken)
    with pytest.raises(SyntaxError):
        ChunkParser().parse(broken, name)


def test_repeated_methods_share_one_tree(code_files):
    parser = ChunkParser()
    methods = [
        method.tree
        for name, text in code_files
        for cls in parser.parse(text, name).classes
        if cls.name == "Conv2d"
        for method in cls.methods.values()
        if method.tree.name == "forward"
    ]
    assert len(methods) >= 2
    assert all(tree is methods[0] for tree in methods)

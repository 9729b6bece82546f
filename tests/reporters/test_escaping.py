"""`printable`: what a person is shown of a name; `dumps_valid`: what JSON keeps of it."""

from __future__ import annotations

import json

import pytest

from exportcheck.reporters.escaping import dumps_valid, printable


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("clear\x1b[2J", "clear\\x1b[2J"),
        ("bell\x07 del\x7f csi\x9b", "bell\\x07 del\\x7f csi\\x9b"),
        ("two\nlines\r\t", "two\\x0alines\\x0d\\x09"),
        ("abc\u202edcba", "abc\\u202edcba"),
        ("\u202a\u202b\u202c\u202d", "\\u202a\\u202b\\u202c\\u202d"),
        ("\u2066\u2067\u2068\u2069", "\\u2066\\u2067\\u2068\\u2069"),
        ("mark\u200e\u200f\u061c", "mark\\u200e\\u200f\\u061c"),
        ("line\u2028para\u2029", "line\\u2028para\\u2029"),
        ("not\ufffe\uffff", "not\\ufffe\\uffff"),
        ("we\udcffird", "we\\xffird"),
        ("lone\ud800", "lone\\ud800"),
        ("C:\\models\\net.onnx", "C:\\models\\net.onnx"),
        ("ünïcödé 模型 مرحبا", "ünïcödé 模型 مرحبا"),
    ],
)
def test_printable_shows_every_hidden_character(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_printable_twice_changes_nothing() -> None:
    once = printable("a\x1b\u202eb\udcff")
    assert printable(once) == once


def test_json_keeps_the_exact_name() -> None:
    name = "a\x1b[2J\u202e\u2066b"
    assert json.loads(dumps_valid({"node": name})) == {"node": name}

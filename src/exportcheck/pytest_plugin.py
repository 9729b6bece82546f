"""pytest plugin (entry point `exportcheck`): the `export_check` fixture and `exportcheck` marker.

    @pytest.mark.exportcheck(formats=["onnx"], devices="cpu")
    def test_my_model_exports(export_check):
        export_check(MyModel(), (torch.randn(2, 3),))

The marker's keyword arguments become defaults of every `export_check` call in that test.
"""

from __future__ import annotations

from typing import Any

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "exportcheck(**options): default options (formats, devices, rtol, atol, fail_on, ...) "
        "for the export_check fixture",
    )


@pytest.fixture
def export_check(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    """A callable `(model, example_inputs, **options) -> Report` that fails the test with the
    findings when the eval-mode export is wrong; artifacts go to the test's tmp_path."""
    marker = request.node.get_closest_marker("exportcheck")
    defaults: dict[str, Any] = dict(marker.kwargs) if marker else {}

    def check(model: Any, example_inputs: Any, **options: Any) -> Any:
        from exportcheck.errors import MissingExtraError
        from exportcheck.testing import assert_export_ok

        merged = {**defaults, **options}
        merged.setdefault("out_dir", tmp_path / "exportcheck")
        merged.setdefault("subject", request.node.nodeid)
        try:
            return assert_export_ok(model, example_inputs, **merged)
        except MissingExtraError as error:
            pytest.fail(str(error), pytrace=False)

    return check

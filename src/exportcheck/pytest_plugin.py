"""pytest plugin (entry point `exportcheck`): the `export_check` fixture and `exportcheck` marker.

    @pytest.mark.exportcheck(formats=["onnx"], ignore=["runtime-nondeterminism"])
    def test_my_model_exports(export_check):
        export_check(MyModel(), (torch.randn(2, 3),))

The marker's keyword arguments become defaults of every `export_check` call in that test. The
project's `[tool.exportcheck]` settings (found from pytest's rootdir) judge every check, as they
judge `exportcheck validate`; a call's or marker's `select`, `ignore` and `suppress` refine them.
"""

from __future__ import annotations

from typing import Any

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "exportcheck(**options): default options (formats, devices, select, ignore, suppress, "
        "rtol, atol, fail_on, ...) for the export_check fixture",
    )


@pytest.fixture
def export_check(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    """A callable `(model, example_inputs, **options) -> Report` that fails the test with the
    problems when the eval-mode export is wrong; artifacts go to the test's tmp_path."""
    marker = request.node.get_closest_marker("exportcheck")
    defaults: dict[str, Any] = dict(marker.kwargs) if marker else {}
    rootdir = str(request.config.rootpath)

    def check(model: Any, example_inputs: Any, **options: Any) -> Any:
        __tracebackhide__ = True
        from exportcheck.errors import ConfigError, MissingExtraError
        from exportcheck.settings.config import load_settings
        from exportcheck.testing import assert_export_ok

        merged = {**defaults, **options}
        merged.setdefault("out_dir", tmp_path / "exportcheck")
        merged.setdefault("subject", request.node.nodeid)
        try:
            merged.setdefault("settings", load_settings(cwd=rootdir))
            return assert_export_ok(model, example_inputs, **merged)
        except (MissingExtraError, ConfigError) as error:
            pytest.fail(str(error), pytrace=False)

    return check

"""Runtime packages imported the way exportcheck may use them: without writing under the user's
home or reporting to their vendor."""

from __future__ import annotations

import os
import sys
from typing import Any


def onnxruntime() -> Any:
    """onnxruntime, with its telemetry off. From 1.32 on, its import writes a device id and an
    event store under ~/.cache/Microsoft/DeveloperTools/.onnxruntime (or $XDG_CACHE_HOME) and
    starts Microsoft's 1DS telemetry client, unless ORT_DISABLE_TELEMETRY is set; a value the
    caller set is kept. When the caller imported onnxruntime first, its choice has been made."""
    if "onnxruntime" not in sys.modules:
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime as module

    return module


def openvino() -> Any:
    """openvino, imported without its telemetry. On import, its model converter otherwise
    writes a client id under the user's home (~/intel) and sends an event to Google Analytics
    from a forked process (a fork that deadlocks in a process with other threads). Without
    the `openvino_telemetry` module it uses the stub that OpenVINO ships for that case."""
    if "openvino" not in sys.modules and "openvino_telemetry" not in sys.modules:
        sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]  # ImportError
        try:
            import openvino as module
        finally:
            del sys.modules["openvino_telemetry"]
    import openvino as module

    return module

"""Which devices a run uses, and the TF32 switch for CUDA references."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

DEVICE_CHOICES = ("cpu", "cuda", "all")


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def resolve_devices(
    requested: str | Sequence[str] | None,
) -> tuple[list[str], list[tuple[str, str]]]:
    """The devices to use, and the ones asked for (or implied by `all`) that are missing, with why."""
    if (
        requested is None
        or requested == "all"
        or (not isinstance(requested, str) and "all" in requested)
    ):
        wanted = ["cpu", "cuda"]
    elif isinstance(requested, str):
        wanted = [requested]
    else:
        wanted = list(dict.fromkeys(requested))
    for device in wanted:
        if device not in ("cpu", "cuda"):
            from exportcheck.errors import InputSpecError

            raise InputSpecError(
                f"unknown device {device!r} (choose from cpu, cuda, all)", subject="--device"
            )
    usable: list[str] = []
    missing: list[tuple[str, str]] = []
    for device in wanted:
        if device == "cuda" and not cuda_available():
            missing.append(("cuda", "CUDA is not available to torch on this machine"))
        else:
            usable.append(device)
    return usable, missing


@contextlib.contextmanager
def tf32(allowed: bool) -> Iterator[None]:
    """TF32 off (unless allowed) for CUDA matmuls and cuDNN convolutions, restored after."""
    import torch

    previous = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = allowed
    torch.backends.cudnn.allow_tf32 = allowed
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = previous

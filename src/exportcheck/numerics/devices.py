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
    """The devices to use, and the ones implied by `all` (the default) that are missing, with
    why. A device named explicitly that is missing is an input error: a CI job that asked for
    the GPU and lost it must not pass on the CPU alone."""
    from exportcheck.errors import InputSpecError

    explicit = not (
        requested is None
        or requested == "all"
        or (not isinstance(requested, str) and "all" in requested)
    )
    if not explicit:
        wanted = ["cpu", "cuda"]
    elif isinstance(requested, str):
        wanted = [requested]
    else:
        wanted = list(dict.fromkeys(requested))
    for device in wanted:
        if device not in ("cpu", "cuda"):
            raise InputSpecError(
                f"unknown device {device!r} (choose from cpu, cuda, all)", subject="--device"
            )
    usable: list[str] = []
    missing: list[tuple[str, str]] = []
    for device in wanted:
        if device == "cuda" and not cuda_available():
            why = "CUDA is not available to torch on this machine"
            if explicit:
                raise InputSpecError(f"cuda was asked for, but {why}", subject="--device")
            missing.append(("cuda", why))
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

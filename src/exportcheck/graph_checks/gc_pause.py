"""Pausing Python's cyclic garbage collector around allocation-heavy, cycle-free work."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Reading a large graph or rendering a large report allocates hundreds of thousands of
    small objects; each allocation burst triggers collections that walk every live object, which
    measured 0.65 s of a 2.6 s inspect of a 1M-node graph. Reference counting frees nearly all of
    these objects; the few cycles (a scope and its lazy index) wait for the collector's next run
    once its previous state is restored on exit."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()

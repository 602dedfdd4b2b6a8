"""Shared by the benchmarks: the best of a few timed runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def best(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    """(fastest wall time in seconds, the last result) over *repeat* runs of *fn*."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result

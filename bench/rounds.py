"""Paired rounds: each side runs once per round, in rotating order; ratios are taken per round, then summarised.

A slow moment of a shared machine hits both sides of one round alike, so the per-round ratio is steadier than
a ratio of medians. Each run also measures this process's CPU time (the worker runs here, the server does
not): CPU per step is disturbed far less by other load than wall time is.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

Runner = Callable[[], Awaitable[Any]]


def cpu_seconds() -> float:
    """User + system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Sample:
    """One run of one side: wall and CPU seconds."""

    wall: float
    cpu: float


@dataclass
class Rounds:
    """Samples per side, in round order (index ``i`` of every side is round ``i``)."""

    samples: dict[str, list[Sample]] = field(default_factory=dict)

    def wall(self, side: str) -> list[float]:
        return [s.wall for s in self.samples[side]]

    def cpu(self, side: str) -> list[float]:
        return [s.cpu for s in self.samples[side]]


async def measure(runner: Runner) -> Sample:
    """Run once; the wall and CPU time it took."""
    c0, t0 = cpu_seconds(), time.perf_counter()
    await runner()
    return Sample(time.perf_counter() - t0, cpu_seconds() - c0)


async def paired(runners: dict[str, Runner], rounds: int) -> Rounds:
    """One warm-up each, then ``rounds`` rounds, rotating the order every round."""
    names = list(runners)
    for name in names:
        await runners[name]()
    out = Rounds({name: [] for name in names})
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            out.samples[name].append(await measure(runners[name]))
    return out


def spread(values: list[float]) -> dict[str, float]:
    """Median, quartiles and range of ``values`` (rounded for the report)."""
    ordered = sorted(values)
    if len(ordered) >= 4:
        q1, _, q3 = statistics.quantiles(ordered, n=4)
    else:
        q1, q3 = ordered[0], ordered[-1]
    return {"median": round(statistics.median(ordered), 3), "q1": round(q1, 3), "q3": round(q3, 3),
            "min": round(ordered[0], 3), "max": round(ordered[-1], 3), "n": len(ordered)}


def ratio(numerator: list[float], denominator: list[float]) -> dict[str, float]:
    """The per-round ratios ``numerator[i] / denominator[i]``, summarised by ``spread``."""
    return spread([a / b for a, b in zip(numerator, denominator, strict=True) if b > 0])

"""Summaries of latency samples: median, tail percentiles, throughput."""

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linearly interpolated between closest ranks."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Summary:
    """Latency statistics of one series, in seconds."""

    n: int
    p50_s: float
    p90_s: float
    p99_s: float
    min_s: float
    mean_s: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> "Summary":
        """Summarise a non-empty series of durations in seconds."""
        return cls(
            n=len(samples),
            p50_s=percentile(samples, 50),
            p90_s=percentile(samples, 90),
            p99_s=percentile(samples, 99),
            min_s=min(samples),
            mean_s=sum(samples) / len(samples),
        )


def ms(seconds: float) -> str:
    """Seconds as milliseconds with precision that suits the magnitude."""
    value = seconds * 1000
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def ratio(value: float, baseline: float) -> str:
    """``value / baseline`` as ``1.23×`` (or ``n/a`` for a zero baseline)."""
    return f"{value / baseline:.3f}×" if baseline > 0 else "n/a"

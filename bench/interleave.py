"""Interleaved rounds: every path once per round, each round starting one path later.

Running the paths back to back in rotating order lets the shared machine's slow drifts hit
each path alike, and the per-round ratio against a baseline cancels them; the ratio of two
medians taken minutes apart does not.
"""

import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

T = TypeVar("T")
_STARTED_S = time.monotonic()


def rounds(
    paths: Mapping[str, Callable[[], T]],
    count: int,
    warmup: int,
    label: str,
    show: Callable[[T], str] = str,
) -> dict[str, list[T]]:
    """``warmup`` unrecorded rounds, then ``count`` recorded ones; path -> one result a round.
    Each round's results go to stderr (``show`` formats one) as progress."""
    names = list(paths)
    results: dict[str, list[T]] = {name: [] for name in names}
    for index in range(warmup + count):
        shift = index % len(names)
        done = []
        for name in names[shift:] + names[:shift]:
            result = paths[name]()
            if index >= warmup:
                results[name].append(result)
            done.append(f"{name} {show(result)}")
        kind = "warm-up" if index < warmup else f"round {index - warmup + 1}/{count}"
        log(label, f"{kind}: {', '.join(done)}")
    return results


def log(label: str, message: str) -> None:
    """A progress line on stderr (stdout carries the report), with the seconds since the harness
    was imported."""
    elapsed_s = time.monotonic() - _STARTED_S
    print(f"bench {label} [{elapsed_s:.1f} s]: {message}", file=sys.stderr, flush=True)


def paired_ratio(samples: Sequence[float], baseline: Sequence[float]) -> float:
    """Median over rounds of ``samples[i] / baseline[i]`` (same round, back to back)."""
    if not samples or len(samples) != len(baseline):
        raise ValueError("need one sample per round on both paths")
    return statistics.median(s / b for s, b in zip(samples, baseline, strict=True))

"""Forked children of the scale-out benchmark, and what they and Redis cost while it runs.

Workers and producers are forked from the benchmark process, between its event loops, so
64 workers start in a moment instead of each importing pydantic and redis-py again (a fork
server would re-run ``__main__`` in every child). ``Children`` stops every one of them
(SIGTERM, then SIGKILL) however a phase ends. CPU figures come from /proc, per process and
machine-wide.
"""

import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import TracebackType
from typing import Any

import redis

from bench.stack import cpu_s

FORK = multiprocessing.get_context("fork")


class ChildFailed(RuntimeError):
    """A forked child died or did not answer in time."""


@dataclass
class Child:
    role: str  # "worker" or "producer"
    process: BaseProcess
    pipe: Connection

    @property
    def pid(self) -> int:
        return self.process.pid or 0

    def receive(self, timeout_s: float) -> Any:
        """The next object the child sends; raise ``ChildFailed`` if none comes in time."""
        if not self.pipe.poll(timeout_s):
            state = "alive" if self.process.is_alive() else f"exit {self.process.exitcode}"
            raise ChildFailed(f"{self.role} {self.pid} sent nothing in {timeout_s:.0f} s ({state})")
        try:
            got = self.pipe.recv()
        except EOFError as exc:
            raise ChildFailed(f"{self.role} {self.pid} exited without a report") from exc
        if isinstance(got, Exception):
            raise ChildFailed(str(got))
        return got


class Children:
    """Forks children and stops them all on exit."""

    def __init__(self) -> None:
        self.all: list[Child] = []

    def fork(self, role: str, target: Callable[..., None], plan: object) -> Child:
        """Fork ``target(plan, pipe)``; the pipe carries its messages back."""
        if threading.active_count() > 1 and not self.all:
            # Only the forking thread is copied: a lock another thread holds stays held.
            print(
                f"bench scaleout: forking with {threading.active_count()} threads running",
                file=sys.stderr,
            )
        ours, theirs = FORK.Pipe()
        process = FORK.Process(target=target, args=(plan, theirs), daemon=True)
        process.start()
        theirs.close()
        child = Child(role, process, ours)
        self.all.append(child)
        return child

    def wait(self, ready: Callable[[], bool], timeout_s: float) -> None:
        """Poll ``ready`` until true; fail at once if a child has exited, or at the timeout."""
        deadline = time.monotonic() + timeout_s
        while not ready():
            dead = [c for c in self.all if not c.process.is_alive()]
            if dead:
                codes = ", ".join(f"{c.role} {c.pid}: exit {c.process.exitcode}" for c in dead)
                raise ChildFailed(f"children exited before they were ready ({codes})")
            if time.monotonic() > deadline:
                raise ChildFailed(f"children not ready in {timeout_s:.0f} s")
            time.sleep(0.05)

    def of(self, role: str) -> list[Child]:
        return [child for child in self.all if child.role == role]

    def terminate(self, role: str) -> None:
        """SIGTERM every live child of ``role`` (they drain and report)."""
        for child in self.of(role):
            if child.process.is_alive():
                os.kill(child.pid, signal.SIGTERM)

    def __enter__(self) -> "Children":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for child in self.all:
            if child.process.is_alive():
                os.kill(child.pid, signal.SIGTERM)
        for child in self.all:
            child.process.join(10)
            if child.process.is_alive():
                child.process.kill()
                child.process.join()
            child.pipe.close()
        self.all.clear()


def machine_busy_s() -> float:
    """CPU seconds all cores have spent busy since boot (not idle, not iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sample:
    """CPU seconds so far: per role (summed over its processes), Redis, the whole machine;
    and Redis's own per-command counters (``INFO commandstats``)."""

    cpu_s: dict[str, float]
    commands: dict[str, tuple[int, float]]  # command -> (calls, µs)

    def minus(self, before: "Sample") -> "Sample":
        cpu = {k: v - before.cpu_s.get(k, 0.0) for k, v in self.cpu_s.items()}
        commands = {}
        for name, (calls, usec) in self.commands.items():
            old_calls, old_usec = before.commands.get(name, (0, 0.0))
            if calls > old_calls:
                commands[name] = (calls - old_calls, usec - old_usec)
        return Sample(cpu, commands)


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += cpu_s(pid)
        except (OSError, IndexError, ValueError):
            pass  # exited: its CPU time is gone with it
    return total


def sample(children: Children, redis_pid: int, client: redis.Redis) -> Sample:
    """CPU used so far by each role, Redis and the machine, and Redis's command stats."""
    cpu = {role: _cpu([c.pid for c in children.of(role)]) for role in ("producer", "worker")}
    cpu["redis"] = cpu_s(redis_pid)
    cpu["machine"] = machine_busy_s()
    stats: dict[str, Any] = client.info("commandstats")  # type: ignore[assignment]
    commands = {
        key.removeprefix("cmdstat_"): (int(value["calls"]), float(value["usec"]))
        for key, value in stats.items()
    }
    return Sample(cpu, commands)

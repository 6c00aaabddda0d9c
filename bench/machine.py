"""What a benchmark ran on, for the report: cores, CPU, Python, Redis, date, commit."""

import os
import platform
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench import REPO
from pyparrot import redis_server


@dataclass(frozen=True)
class Machine:
    cores: int
    cpu: str
    python: str
    redis: str
    date: str
    commit: str

    def markdown(self) -> str:
        """One line describing the machine and the run."""
        return (
            f"Machine: {self.cores} cores ({self.cpu}), Python {self.python}, "
            f"{self.redis}; run {self.date} at commit `{self.commit}`."
        )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _run(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=10, cwd=REPO)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _redis_version() -> str:
    try:
        out = _run([redis_server.binary(), "--version"])
    except FileNotFoundError:
        return "no redis-server"
    # "Redis server v=7.0.15 sha=... malloc=jemalloc-5.3.0 bits=64 build=..."
    version = next((p[2:] for p in out.split() if p.startswith("v=")), "?")
    return f"redis-server {version}"


def load_average() -> float:
    """The 1-minute load average (runnable processes, all users)."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


def describe() -> Machine:
    """Describe this machine now."""
    commit = _run(["git", "rev-parse", "--short", "HEAD"]) or "unknown"
    if _run(["git", "status", "--porcelain", "--untracked-files=no"]):
        commit += "+dirty"
    return Machine(
        cores=os.cpu_count() or 0,
        cpu=_cpu_model(),
        python=platform.python_version(),
        redis=_redis_version(),
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        commit=commit,
    )

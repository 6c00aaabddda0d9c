"""Starting, recording and stopping the local processes ``pyparrot up`` owns."""

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

# Two records of one process agree on its start to the clock tick; another process that got
# the same pid started later than this.
SAME_START_S = 0.05
# Popen objects of children this process started: kept so they are reaped (not left as
# zombies) and not garbage-collected while running.
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class Proc:
    name: str
    pid: int
    started_s: float  # start time (Unix seconds), so a recycled pid is never signalled
    log: str
    cmd: list[str]
    env: dict[str, str] = field(default_factory=dict)  # what it was started with, to restart it


def _started_s(pid: int) -> float:
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return -1.0


def alive(proc: Proc) -> bool:
    """True if the recorded process still runs (and is the same process)."""
    try:
        process = psutil.Process(proc.pid)
        same = abs(process.create_time() - proc.started_s) < SAME_START_S
        return same and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:  # gone, or not ours to look at
        return False


def spawn(name: str, cmd: list[str], env: dict[str, str], logs_dir: Path) -> Proc:
    """Start ``cmd`` in its own session with output appended to ``logs_dir/name.log``."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    log_path = logs_dir / f"{name}.log"
    with log_path.open("ab") as log:
        child = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            start_new_session=True,
        )
    _children[child.pid] = child
    return Proc(name, child.pid, _started_s(child.pid), str(log_path), cmd, env)


def respawn(proc: Proc) -> Proc:
    """Start a process again as it was started, its output appended to the same log."""
    return spawn(proc.name, proc.cmd, proc.env, Path(proc.log).parent)


def this_process(name: str, cmd: list[str]) -> Proc:
    """The calling process, as a record (a foreground ``up`` supervising its stack)."""
    return Proc(name, os.getpid(), _started_s(os.getpid()), "", cmd)


def exit_code(proc: Proc) -> int | None:
    """How a process this one started ended (negative: the signal); None if still running
    or not a child of this process (its parent collected the code)."""
    child = _children.get(proc.pid)
    return None if child is None else child.poll()


def age_s(proc: Proc) -> float:
    """Seconds since the process started (for one that has ended: until about now)."""
    return time.time() - proc.started_s


@contextlib.contextmanager
def state_lock(path: Path) -> Iterator[None]:
    """Exclusive use of a state file among processes (a supervisor, ``down``, ``scale``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_suffix(".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def stop(procs: list[Proc], timeout_s: float) -> list[str]:
    """SIGTERM each live process, wait, SIGKILL what remains; return the killed names."""
    live = [p for p in procs if alive(p)]
    for proc in live:
        _signal(proc, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(alive(p) for p in live):
        _reap()
        time.sleep(0.1)
    killed = []
    for proc in live:
        if alive(proc):
            _signal(proc, signal.SIGKILL)
            killed.append(proc.name)
            if proc.pid in _children:  # ours: wait the moment SIGKILL takes, and reap it
                _children.pop(proc.pid).wait(10)
    _reap()
    return killed


def _signal(proc: Proc, sig: signal.Signals) -> None:
    try:
        os.kill(proc.pid, sig)
    except ProcessLookupError:
        pass


def _reap() -> None:
    """Collect exited children this process started so they do not linger as zombies."""
    for pid, child in list(_children.items()):
        if child.poll() is not None:
            del _children[pid]


def save(path: Path, procs: list[Proc], extra: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"procs": [asdict(p) for p in procs], **extra}, indent=2))
    tmp.replace(path)


def load(path: Path) -> tuple[list[Proc], dict[str, object]]:
    if not path.is_file():
        return [], {}
    data = json.loads(path.read_text())
    # A record without started_s (written before it replaced /proc ticks) is never taken
    # for a live process: signalling a recycled pid would be worse.
    procs = [
        Proc(**{"started_s": -1.0, **{k: v for k, v in p.items() if k != "started_ticks"}})
        for p in data.pop("procs", [])
    ]
    return procs, data


def tail(path: str, lines: int = 20) -> str:
    """The last lines of a log file (for error messages)."""
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""

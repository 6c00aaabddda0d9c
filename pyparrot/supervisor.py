"""Keeping the ``up`` stack running: a process that exits is started again after a pause
that doubles with each crash in a row, and its restarts and last exit code are kept in the
state file for ``pyparrot status``.

``up`` in the foreground runs this loop itself. ``up --detach`` leaves it to a small process
of its own (``python -m pyparrot.supervisor``, recorded as ``supervisor``), which ``down``
stops first. That process did not start the first generation of the stack, so their exit
codes are not its to read (status shows none); it knows those of the processes it restarted.
``down`` and ``scale`` change the state file under the same lock, so a process they stop is
never taken for a crash.
"""

import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pyparrot import procs
from pyparrot.settings import CliSettings

log = logging.getLogger(__name__)
NAME = "supervisor"
STABLE_S = 60.0  # a process that ran this long before it crashed starts its backoff afresh
TICK_S = 0.5


@dataclass
class Crashes:
    in_row: int = 0
    restart_at: float | None = None  # monotonic time of the planned restart


class Supervisor:
    """Restarts the recorded processes of one stack that have exited."""

    def __init__(self, settings: CliSettings, state_file: Path, echo: Callable[[str], None]):
        self.settings = settings
        self.state_file = state_file
        self.echo = echo
        self.crashes: dict[str, Crashes] = {}

    def tick(self) -> bool:
        """One look at the stack: note new exits, restart those due. False once the stack is
        gone (``down`` removed its state file)."""
        with procs.state_lock(self.state_file):
            if not self.state_file.exists():
                return False
            recorded, extra = procs.load(self.state_file)
            restarts: dict[str, dict[str, object]] = extra.setdefault("restarts", {})  # type: ignore[assignment]
            changed = False
            for index, proc in enumerate(recorded):
                if proc.name == NAME or procs.alive(proc):
                    continue
                record = restarts.setdefault(proc.name, {"count": 0, "last_exit_code": None})
                crash = self.crashes.setdefault(proc.name, Crashes())
                if crash.restart_at is None:
                    record["last_exit_code"] = procs.exit_code(proc)
                    self._plan(proc, crash, record["last_exit_code"])
                    changed = True
                elif time.monotonic() >= crash.restart_at:
                    recorded[index] = procs.respawn(proc)
                    record["count"] = int(str(record["count"])) + 1
                    record["last_restart_s"] = time.time()
                    crash.restart_at = None
                    self.echo(f"restarted {proc.name} (pid {recorded[index].pid})")
                    changed = True
            if changed:
                procs.save(self.state_file, recorded, extra)
            return True

    def _plan(self, proc: procs.Proc, crash: Crashes, code: object) -> None:
        if procs.age_s(proc) >= STABLE_S:
            crash.in_row = 0
        delay_s = min(
            self.settings.restart_backoff_s * 2**crash.in_row, self.settings.restart_backoff_max_s
        )
        crash.in_row += 1
        crash.restart_at = time.monotonic() + delay_s
        how = "with an unknown code" if code is None else f"with code {code}"
        self.echo(f"{proc.name} exited {how}; restarting it in {delay_s:.1f} s")

    def run(self, stop: threading.Event) -> bool:
        """Tick until ``stop`` is set (True) or the stack is gone (False)."""
        while not stop.wait(TICK_S):
            if not self.tick():
                return False
        return True


def main() -> None:
    """``up --detach``'s supervisor: run until SIGTERM (``down``) or until the stack is gone."""
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s supervisor: %(message)s")
    settings = CliSettings()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log.info("supervising the stack in %s", settings.state_file)
    Supervisor(settings, settings.state_file, log.warning).run(stop)
    sys.exit(0)


if __name__ == "__main__":
    main()

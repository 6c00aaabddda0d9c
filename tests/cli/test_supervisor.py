"""The stack's supervisor with real processes: a crashed one is started again after a pause
that doubles with each crash in a row, its restarts and exit code are recorded for
``status``, and ``down`` stops it all without a restart in between."""

import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyparrot import procs, stack
from pyparrot.settings import CliSettings
from pyparrot.supervisor import Supervisor
from tests.polling import eventually

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
FAILING = [sys.executable, "-c", "import sys; sys.exit(3)"]


@pytest.fixture
def settings(tmp_path: Path) -> CliSettings:
    return CliSettings(home=tmp_path, restart_backoff_s=0.2, restart_backoff_max_s=0.8)


@pytest.fixture
def supervised(settings: CliSettings) -> Iterator[tuple[Supervisor, list[str]]]:
    """A supervisor running in a thread over the stack in ``settings.state_file``."""
    lines: list[str] = []
    supervisor = Supervisor(settings, settings.state_file, lines.append)
    stop = threading.Event()
    thread = threading.Thread(target=supervisor.run, args=(stop,))
    procs.save(settings.state_file, [], {"url": "http://127.0.0.1:1"})
    thread.start()
    yield supervisor, lines
    stop.set()
    thread.join(10)
    stack.down(settings)


def add(settings: CliSettings, name: str, cmd: list[str]) -> procs.Proc:
    proc = procs.spawn(name, cmd, {"PYPARROT_TEST": name}, settings.logs_dir)
    stack.record(settings.state_file, proc)
    return proc


def recorded(settings: CliSettings, name: str) -> tuple[procs.Proc, dict[str, object]]:
    processes, extra = procs.load(settings.state_file)
    restarts: dict[str, dict[str, object]] = extra.get("restarts") or {}  # type: ignore[assignment]
    return next(p for p in processes if p.name == name), restarts.get(name, {})


async def test_a_killed_process_is_restarted_and_counted(
    settings: CliSettings, supervised: tuple[Supervisor, list[str]]
) -> None:
    _supervisor, lines = supervised
    first = add(settings, "worker-1", SLEEPER)
    os.kill(first.pid, signal.SIGKILL)

    async def restarted(count: int) -> bool:
        proc, record = recorded(settings, "worker-1")
        return procs.alive(proc) and record.get("count") == count

    await eventually(lambda: restarted(1), timeout_s=10)
    second, record = recorded(settings, "worker-1")
    assert second.pid != first.pid and second.env == {"PYPARROT_TEST": "worker-1"}
    assert record["last_exit_code"] == -signal.SIGKILL
    os.kill(second.pid, signal.SIGKILL)  # again at once: a crash in a row waits twice as long
    await eventually(lambda: restarted(2), timeout_s=10)
    assert [line for line in lines if "exited" in line] == [
        "worker-1 exited with code -9; restarting it in 0.2 s",
        "worker-1 exited with code -9; restarting it in 0.4 s",
    ]


async def test_a_crash_loop_backs_off_to_the_cap(
    settings: CliSettings, supervised: tuple[Supervisor, list[str]]
) -> None:
    _supervisor, lines = supervised
    add(settings, "broken-1", FAILING)

    async def crashed_five_times() -> bool:
        return len([line for line in lines if "exited" in line]) >= 5

    await eventually(crashed_five_times, timeout_s=20)
    delays = [line.rsplit(" in ", 1)[1] for line in lines if "exited" in line][:5]
    assert delays == ["0.2 s", "0.4 s", "0.8 s", "0.8 s", "0.8 s"]
    assert all("with code 3" in line for line in lines if "exited" in line)
    assert recorded(settings, "broken-1")[1]["last_exit_code"] == 3


async def test_down_stops_everything_and_nothing_is_restarted(
    settings: CliSettings, supervised: tuple[Supervisor, list[str]]
) -> None:
    supervisor, lines = supervised
    sleepers = [add(settings, f"worker-{i}", SLEEPER) for i in (1, 2)]
    assert supervisor.tick() is True
    stopped, _killed = stack.down(settings)
    assert {p.name for p in stopped} == {"worker-1", "worker-2"}
    assert not any(procs.alive(p) for p in sleepers)
    assert supervisor.tick() is False  # the stack is gone: the loop ends
    assert not [line for line in lines if "restart" in line]

"""``pyparrot scale stt=3 mt=2``: add or remove worker processes of the running stack."""

import re

from pyparrot import procs, stack
from pyparrot.procs import Proc
from pyparrot.settings import CliSettings

WORKER_NAME = re.compile(r"^(?P<stage>.+)-(?P<index>\d+)$")


def parse(specs: list[str]) -> dict[str, int]:
    """``["stt=3", "mt=2"]`` -> counts; any malformed or negative one refuses them all."""
    if not specs:
        raise stack.StackError("say what to scale, e.g. `pyparrot scale stt=3`")
    counts = stack.parse_workers(",".join(specs))
    missing = [s for s, n in counts.items() if n and not stack.runnable(s)]
    if missing:
        raise stack.StackError(f"no worker is available for: {', '.join(missing)}")
    return counts


def _index(proc: Proc, stage: str) -> int:
    match = WORKER_NAME.match(proc.name)
    return int(match["index"]) if match and match["stage"] == stack.proc_prefix(stage) else 0


def scale(settings: CliSettings, counts: dict[str, int]) -> dict[str, tuple[int, int]]:
    """Start or SIGTERM workers until each stage has its count; return stage -> (old, new)."""
    # Under the state lock, so the supervisor never takes a worker stopped here for a crash.
    with procs.state_lock(settings.state_file):
        return _scale(settings, counts)


def _scale(settings: CliSettings, counts: dict[str, int]) -> dict[str, tuple[int, int]]:
    recorded, extra = procs.load(settings.state_file)
    live = [p for p in recorded if procs.alive(p)]
    if not any(p.name == "gateway" for p in live):
        raise stack.StackError("no stack is running: `pyparrot up` first")
    redis_url = str(extra.get("redis_url") or settings.redis_url)
    changes = {}
    for stage, wanted in counts.items():
        mine = sorted((p for p in live if _index(p, stage)), key=lambda p: _index(p, stage))
        if wanted < len(mine):
            extra_procs = mine[wanted:]
            procs.stop(extra_procs, settings.stop_timeout_s)
            live = [p for p in live if p not in extra_procs]
        for _ in range(wanted - len(mine)):
            index = max((_index(p, stage) for p in live), default=0) + 1
            name = f"{stack.proc_prefix(stage)}-{index}"
            live.append(stack.spawn_worker(settings, name, stage, redis_url))
        changes[stage] = (len(mine), wanted)
    procs.save(settings.state_file, live, extra)
    return changes

"""A stand-in ``docker`` command for ``pyparrot start --compose`` tests (no engine runs here).

It records each call (argv and the ``--env-file`` it was given) as a JSON line in
``$FAKE_DOCKER_DIR/calls.jsonl``. ``compose ... up`` then does what the containers would:
it starts the real gateway and external adapter with the env file's settings (port, admin
key) against ``$FAKE_DOCKER_REDIS``; ``exec -T redis redis-cli ...`` runs the real
redis-cli against that Redis; ``down`` stops what ``up`` started. ``$FAKE_DOCKER_FAIL``
makes ``up`` fail the way Docker does without an engine.
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

NO_ENGINE = (
    "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
    "Is the docker daemon running?"
)


def env_file(argv: list[str]) -> dict[str, str]:
    text = Path(argv[argv.index("--env-file") + 1]).read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def up(state: Path, env: dict[str, str]) -> None:
    settings = {
        **os.environ,
        "REDIS_URL": os.environ["FAKE_DOCKER_REDIS"],
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": env["HTTP_PORT"],
        "GATEWAY_ADMIN_API_KEY": env["GATEWAY_ADMIN_API_KEY"],
        "EXT_DISCOVERY_INTERVAL_S": "0.2",
    }
    services = ["services.gateway"]
    if int(env.get("EXTERNAL_REPLICAS", "0")):
        services.append("services.external")
    pids = []
    for module in services:
        with (state / f"{module}.log").open("ab") as log:
            child = subprocess.Popen(
                [sys.executable, "-m", module],
                env=settings,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        pids.append(child.pid)
    (state / "pids").write_text(" ".join(map(str, pids)))
    wait_healthy(f"http://127.0.0.1:{env['HTTP_PORT']}/health")


def wait_healthy(url: str, timeout_s: float = 60.0) -> None:
    """What ``up --wait`` does: return once the gateway's healthcheck passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"fake docker: {url} not healthy after {timeout_s} s")


def down(state: Path) -> None:
    pids = state / "pids"
    for pid in pids.read_text().split() if pids.is_file() else []:
        try:
            os.kill(int(pid), signal.SIGTERM)
        except ProcessLookupError:
            pass
    pids.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    state = Path(os.environ["FAKE_DOCKER_DIR"])
    env = env_file(argv) if "--env-file" in argv else {}
    with (state / "calls.jsonl").open("a") as calls:
        calls.write(json.dumps({"argv": argv, "env_file": env}) + "\n")
    if argv[:1] != ["compose"]:
        print(f"fake docker: unexpected call {argv}", file=sys.stderr)
        return 2
    if "up" in argv:
        if os.environ.get("FAKE_DOCKER_FAIL"):
            print(NO_ENGINE, file=sys.stderr)
            return 1
        up(state, env)
    elif "exec" in argv:
        command = argv[argv.index("redis-cli") + 1 :]
        url = os.environ["FAKE_DOCKER_REDIS"]
        return subprocess.run(["redis-cli", "-u", url, *command], check=False).returncode
    elif "down" in argv:
        down(state)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

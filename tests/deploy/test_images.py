"""Every Dockerfile target, run as its image would be (no Docker engine here): a clean venv
gets exactly that target's install steps, read from the Dockerfile and run in a copy of the
image's /app; then its CMD starts, with only the environment the image and an operator give
it, against the test Redis, until it reports ready: the gateway's ``/ready`` (beside a worker
from the STT image), a worker's heartbeat (the external adapter, idle with no registered
server, its metrics port). A dependency missing from a target's install set fails here.

System packages (``apt-get`` steps: espeak-ng, libgomp1) come from the host, which
scripts/setup.sh provides. The venvs are built three at a time and deleted afterwards.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from pyparrot.redis_server import free_port
from shared import streams
from tests.deploy.workers import ENV_PREFIX, WORKERS

pytestmark = [pytest.mark.redis, pytest.mark.images, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ("gateway", *WORKERS)
BUILDS_AT_ONCE = 3  # 2 cores: pip mostly waits on the disk
START_TIMEOUT_S = 90.0
ADMIN_KEY = "images-test-admin-key-0123456789"


@dataclass
class Stage:
    parent: str
    runs: list[str]  # RUN commands, continuation lines joined
    env: dict[str, str]
    cmd: list[str]
    workdir: str


def parse_dockerfile() -> dict[str, Stage]:
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in text.splitlines():
        instruction, _, rest = line.strip().partition(" ")
        if instruction == "FROM":
            parent, _, name = rest.partition(" AS ")
            current = Stage(parent.strip(), [], {}, [], "")
            stages[name.strip()] = current
        elif current is None:
            continue
        elif instruction == "RUN":
            current.runs.append(rest)
        elif instruction == "ENV":
            current.env.update(dict(pair.split("=", 1) for pair in rest.split()))
        elif instruction == "CMD":
            current.cmd[:] = json.loads(rest)
        elif instruction == "WORKDIR":
            current.workdir = rest
    return stages


def chain(stages: dict[str, Stage], name: str) -> list[Stage]:
    """The stage and its ancestors in the file, base first."""
    found = []
    while name in stages:
        found.insert(0, stages[name])
        name = stages[name].parent
    return found


def install_steps(stages: dict[str, Stage], target: str) -> list[str]:
    """The target's pip and requirements steps, in order (system packages are the host's)."""
    steps = []
    for stage in chain(stages, target):
        for run in stage.runs:
            for step in (s.strip() for s in run.split("&&")):
                if step.startswith(("pip ", "python requirements.py")):
                    steps.append(step)
    return steps


def image_env(stages: dict[str, Stage], target: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for stage in chain(stages, target):
        env.update(stage.env)
    return env


@dataclass(frozen=True)
class Built:
    target: str
    python: Path
    app: Path  # the copy of the image's /app (WORKDIR)
    seconds: float


def build(target: str, stages: dict[str, Stage], where: Path) -> Built:
    """A clean venv with the target's install steps run in a copy of its /app, in order."""
    started = time.monotonic()
    venv, app = where / "venv", where / "app"
    app.mkdir(parents=True)
    shutil.copy(ROOT / "pyproject.toml", app)
    shutil.copy(ROOT / "scripts" / "requirements.py", app)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    env |= {
        "PATH": f"{venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}",
        "PIP_NO_COMPILE": "1",  # bytecode is written on first import anyway; saves minutes
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_PROGRESS_BAR": "off",
    }
    for step in install_steps(stages, target):
        if step.startswith("pip install --no-deps .") and not (app / "shared").exists():
            copy_source(app)  # COPY --from=source: the source arrives after the dependencies
        done = subprocess.run(
            step, shell=True, cwd=app, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, f"{target}: `{step}` failed:\n{done.stdout}\n{done.stderr}"
    return Built(target, venv / "bin" / "python", app, time.monotonic() - started)


def copy_source(app: Path) -> None:
    shutil.copy(ROOT / "README.md", app)
    for package in ("shared", "services", "pyparrot"):
        shutil.copytree(ROOT / package, app / package, ignore=shutil.ignore_patterns("__pycache__"))


@pytest.fixture(scope="module")
def images() -> Iterator[dict[str, Built]]:
    stages = parse_dockerfile()
    with tempfile.TemporaryDirectory(prefix="pyparrot-images-") as tmp:
        with ThreadPoolExecutor(BUILDS_AT_ONCE) as pool:
            futures = {t: pool.submit(build, t, stages, Path(tmp) / t) for t in TARGETS}
            built = {target: future.result() for target, future in futures.items()}
        for image in built.values():
            print(f"\n{image.target}: venv built in {image.seconds:.1f} s", end="")
        yield built


def start(image: Built, home: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """The target's CMD as the image runs it: its ENV, its WORKDIR, nothing of ours."""
    stages = parse_dockerfile()
    cmd = chain(stages, image.target)[-1].cmd
    assert cmd[0] == "python", cmd
    base = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
    full = base | image_env(stages, image.target) | env
    home.mkdir(parents=True, exist_ok=True)
    with (home / "output.log").open("wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [str(image.python), *cmd[1:]],
            cwd=image.app,
            env=full,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_until(ready: object, proc: subprocess.Popen[bytes], home: Path, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if ready():  # type: ignore[operator]
            return
        time.sleep(0.1)
    output = (home / "output.log").read_text(errors="replace")[-4000:]
    pytest.fail(f"{what} not ready (exit code {proc.poll()}):\n{output}")


def heartbeat_of(url: str, component: str, pid: int) -> bool:
    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(match=streams.HEARTBEAT_PATTERN):
            raw = client.get(key)
            if raw and json.loads(raw).get("component") == component:
                if json.loads(raw).get("pid") == pid:
                    return True
        return False
    finally:
        client.close()


def answers(url: str, status: int = 200) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == status)
    except (urllib.error.URLError, OSError):
        return False


def worker_env(target: str, redis_url: str, metrics_port: int = 0) -> dict[str, str]:
    return {"REDIS_URL": redis_url, f"{ENV_PREFIX[target]}_METRICS_PORT": str(metrics_port)}


@pytest.mark.parametrize("target", [w for w in WORKERS if w != "external"])
def test_a_worker_image_starts_and_heartbeats(
    target: str, images: dict[str, Built], clean_redis: str, tmp_path: Path
) -> None:
    port = free_port()
    proc = start(images[target], tmp_path, worker_env(target, clean_redis, port))
    try:
        ready = lambda: heartbeat_of(clean_redis, target, proc.pid)  # noqa: E731
        wait_until(ready, proc, tmp_path, f"{target} worker")
        assert answers(f"http://127.0.0.1:{port}/metrics")  # what the HEALTHCHECK asks
    finally:
        stop(proc)
    assert proc.returncode == 0, f"{target} did not stop cleanly on SIGTERM"


def test_the_external_image_starts_and_serves_metrics(
    images: dict[str, Built], clean_redis: str, tmp_path: Path
) -> None:
    """With no server registered the adapter has no stream to heartbeat for; its metrics
    port opens once its loop runs (what the image's HEALTHCHECK asks)."""
    port = free_port()
    proc = start(images["external"], tmp_path, worker_env("external", clean_redis, port))
    try:
        ready = lambda: answers(f"http://127.0.0.1:{port}/metrics")  # noqa: E731
        wait_until(ready, proc, tmp_path, "external adapter")
    finally:
        stop(proc)


def test_the_gateway_image_starts_and_is_ready(
    images: dict[str, Built], clean_redis: str, tmp_path: Path
) -> None:
    """`/ready` needs a live STT worker (the default required stage): one from the STT image."""
    stt = start(images["stt"], tmp_path / "stt", worker_env("stt", clean_redis))
    port = free_port()
    gateway_env = {
        "REDIS_URL": clean_redis,
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "GATEWAY_ADMIN_API_KEY": ADMIN_KEY,  # as compose and the k8s Secret give it
    }
    gateway = start(images["gateway"], tmp_path / "gateway", gateway_env)
    try:
        ready = lambda: answers(f"http://127.0.0.1:{port}/ready")  # noqa: E731
        wait_until(ready, gateway, tmp_path / "gateway", "gateway")
        assert answers(f"http://127.0.0.1:{port}/live")
    finally:
        stop(gateway)
        stop(stt)


def test_a_target_without_the_gateway_extra_cannot_serve_it(images: dict[str, Built]) -> None:
    """The check above would catch a missing dependency: the core-only image lacks FastAPI."""
    done = subprocess.run(
        [str(images["external"].python), "-c", "import services.gateway.app"],
        cwd=images["external"].app,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "ModuleNotFoundError" in done.stderr

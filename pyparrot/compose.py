"""``pyparrot start NAME --compose``: a configured pipeline as a Docker Compose project.

compose.yaml takes its settings from an env file. ``start`` writes one per pipeline,
``$PYPARROT_HOME/NAME/compose.env``: the pipeline's ``.env`` as written, then the
replica count of every stage (0 for those the pipeline does not run here), the gateway's
admin key, which a containerised gateway needs since it does not listen on loopback only,
and Grafana's admin password (compose.yaml has no default for either). Both are kept
(mode 0600) so later starts, ``stop`` and the registration calls reuse them.
Each pipeline is its own compose project (``pyparrot-NAME``), so two never collide.
"""

import os
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

from pyparrot import pipelines
from shared import streams

COMPOSE_FILE = Path(__file__).resolve().parent.parent / "compose.yaml"
ENV_FILE = "compose.env"
ADMIN_KEY = "GATEWAY_ADMIN_API_KEY"
# Generated once per pipeline unless the environment names them; never a well-known default.
SECRETS = (ADMIN_KEY, "GRAFANA_ADMIN_PASSWORD")
# Pipeline stage -> the prefix of its ``<PREFIX>_REPLICAS`` variable in compose.yaml.
REPLICA_VARS = {
    "stt": "STT",
    "mt": "MT",
    "tts": "TTS",
    "summarizer": "SUMMARIZER",
    "llm": "LLM",
    "speaker": "SPEAKER",
    "external": "EXTERNAL",
}
EXEC_TIMEOUT_S = 60.0


class ComposeError(RuntimeError):
    """Docker or docker compose cannot do what was asked; the message says why."""


@dataclass(frozen=True)
class Project:
    docker: str
    name: str
    env_file: Path

    def command(self, *args: str) -> list[str]:
        """``docker compose`` for this project, with its env file, running ``args``."""
        return [
            self.docker, "compose", "-p", self.name, "-f", str(COMPOSE_FILE),
            "--env-file", str(self.env_file), *args,
        ]  # fmt: skip

    def admin_key(self) -> str:
        return read_env(self.env_file).get(ADMIN_KEY, "")


def find_docker() -> str:
    docker = shutil.which("docker")
    if docker is None:
        raise ComposeError(
            "--compose needs Docker: no `docker` command on PATH (install Docker Engine with "
            "the compose plugin, or start without --compose to run local processes)"
        )
    return docker


def project_name(pipeline: str) -> str:
    """A compose project name (lowercase letters, digits, '-', '_') for ``pipeline``."""
    return "pyparrot-" + re.sub(r"[^a-z0-9_-]", "-", pipeline.lower())


def read_env(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    return {k: v or "" for k, v in dotenv_values(path, interpolate=False).items()}


def env_lines(pipeline_env: str, replicas: dict[str, int], secrets_: dict[str, str]) -> list[str]:
    """The compose env file: the pipeline's .env, then what compose.yaml reads besides."""
    lines = [line for line in pipeline_env.splitlines() if line.strip()]
    lines += [f"{REPLICA_VARS[stage]}_REPLICAS={n}" for stage, n in replicas.items()]
    lines += [f"{name}={value}" for name, value in secrets_.items()]
    return lines


def write_env(home: Path, name: str, replicas: dict[str, int]) -> Path:
    """Write ``NAME/compose.env`` (0600, atomically), keeping the secrets it already has."""
    directory = pipelines.config_dir(home, name)
    path = directory / ENV_FILE
    old = read_env(path)
    kept = {
        var: old.get(var) or os.environ.get(var) or secrets.token_urlsafe(32) for var in SECRETS
    }
    text = "\n".join(env_lines((directory / pipelines.ENV_FILE).read_text(), replicas, kept))
    tmp = directory / f".{ENV_FILE}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text + "\n")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def up(home: Path, name: str, replicas: dict[str, int], wait_s: float) -> Project:
    """``docker compose up -d --wait`` with the pipeline's settings; the project."""
    docker = find_docker()  # before writing anything: a refused start leaves nothing new
    unknown = set(replicas) - set(REPLICA_VARS)
    if unknown:
        raise ComposeError(f"compose.yaml has no service for: {', '.join(sorted(unknown))}")
    replicas = {stage: replicas.get(stage, 0) for stage in REPLICA_VARS}
    project = Project(docker, project_name(name), write_env(home, name, replicas))
    wait = ["--wait", "--wait-timeout", str(max(1, round(wait_s)))]
    _run(project.command("up", "-d", *wait), "up")
    return project


def init_groups(project: Project, domain: str) -> None:
    """The role groups, set inside the project's Redis (it publishes no port)."""
    for role in ("admin", "presenter"):
        args = ("exec", "-T", "redis", "redis-cli", "SADD", streams.role_group(role))
        _run(project.command(*args, f"admin@{domain}"), "exec redis", capture=True)


def down(home: Path, name: str) -> None:
    """``docker compose down`` of a pipeline started with ``--compose``."""
    path = pipelines.config_dir(home, name) / ENV_FILE
    if not path.is_file():
        raise ComposeError(f"{name} was not started with --compose (no {path})")
    _run(Project(find_docker(), project_name(name), path).command("down"), "down")


def _run(command: list[str], what: str, capture: bool = False) -> None:
    """Run docker; compose's own progress goes to the terminal unless ``capture``."""
    try:
        done = subprocess.run(
            command,
            capture_output=capture,
            text=True,
            check=False,
            timeout=EXEC_TIMEOUT_S if capture else None,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ComposeError(f"docker compose {what} failed: {exc}") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout or "").strip() if capture else "see its output above"
        raise ComposeError(f"docker compose {what} failed (exit {done.returncode}): {detail}")

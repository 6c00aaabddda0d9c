"""A real Prometheus scrapes a real gateway, STT worker and external adapter (serving a
stand-in ASR server); every dashboard query has data.

The committed deploy/prometheus/prometheus.yml is used with its DNS discovery swapped for
the test's loopback ports and a 1 s scrape interval. Traffic is sent in two rounds with a
scrape in between, so every counter and histogram has an increase ``rate()`` can see.
"""

import json
import math
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import yaml

from pyparrot import procs
from pyparrot.redis_server import free_port
from services.gateway import monitor
from shared import bus, streams
from tests.audio import DATA
from tests.cli.helpers import asr_server
from tests.polling import eventually

pytestmark = [pytest.mark.redis, pytest.mark.e2e, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
STREAM = streams.jobs("stt", "tiny.en")
# What Grafana would put in for the dashboards' variables here.
VARIABLES = {"$__rate_interval": "1m", "$component": "stt"}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, check=False
    )


def needs(binary: str) -> None:
    if shutil.which(binary) is None:
        pytest.skip(f"`{binary}` not installed (Debian package `prometheus`)")


def test_promtool_accepts_config_and_rules() -> None:
    needs("promtool")
    for args in (
        ("check", "config", "prometheus.yml"),
        ("check", "rules", "alerts.yml"),
        ("test", "rules", "alerts_test.yml"),  # each alert fires on the case it names
    ):
        result = promtool(*args)
        assert result.returncode == 0, result.stdout + result.stderr


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, PromQL with variables filled in) for every target."""
    found = []

    def walk(panels: list[dict[str, Any]], name: str) -> None:
        for panel in panels:
            walk(panel.get("panels", []), name)  # panels nested in collapsed rows
            for target in panel.get("targets", []):
                expr = target["expr"]
                for variable, value in VARIABLES.items():
                    expr = expr.replace(variable, value)
                found.append((name, panel["title"], expr))

    for path in DASHBOARDS:
        walk(json.loads(path.read_text())["panels"], path.name)
    return found


def test_dashboards_are_wellformed() -> None:
    names = {p.stem for p in DASHBOARDS}
    assert {"overview", "stage", "workers"} <= names
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARDS]
    assert len(set(uids)) == len(uids)
    for name, title, expr in dashboard_queries():
        assert "$" not in expr.replace('"$1"', ""), f"{name} / {title}: unknown variable"


def scrape_config(ports: dict[str, str], prometheus: str) -> dict[str, Any]:
    """The committed config with DNS discovery swapped for the test's ports."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(PROMETHEUS_DIR / f) for f in config["rule_files"]]
    for job in config["scrape_configs"]:
        for sd in job.pop("dns_sd_configs", []):
            job.setdefault("static_configs", []).extend(
                {"targets": [ports[name]], "labels": {"service": name}}
                for name in sd["names"]
                if name in ports
            )
        for static in job.get("static_configs", []):
            static["targets"] = [
                prometheus if t == "localhost:9090" else t for t in static["targets"]
            ]
    return config


@pytest.fixture
def stack(clean_redis: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Gateway, STT worker and external adapter processes, then a Prometheus scraping them."""
    needs("prometheus")
    gateway, stt, external, prom = (f"127.0.0.1:{free_port()}" for _ in range(4))
    env = {"REDIS_URL": clean_redis, "STT_MODEL_CACHE_DIR": str(tmp_path / "models")}
    started = [
        procs.spawn(
            "gateway",
            [sys.executable, "-m", "services.gateway"],
            {**env, "GATEWAY_PORT": gateway.split(":")[1], "GATEWAY_MONITOR_INTERVAL_S": "0.5"},
            tmp_path,
        ),
        procs.spawn(
            "stt",
            [sys.executable, "-m", "services.stt"],
            # A short claim time so the worker reclaims the stuck job left for it below.
            {**env, "STT_METRICS_PORT": stt.split(":")[1], "STT_CLAIM_IDLE_MS": "500"},
            tmp_path,
        ),
        procs.spawn(
            "external",
            [sys.executable, "-m", "services.external"],
            {**env, "EXT_METRICS_PORT": external.split(":")[1], "EXT_DISCOVERY_INTERVAL_S": "0.5"},
            tmp_path,
        ),
    ]
    ports = {"gateway": gateway, "stt": stt, "external": external}
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(ports, prom)))
    cmd = [
        "prometheus",
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address={prom}",
    ]
    started.append(procs.spawn("prometheus", cmd, {}, tmp_path))
    try:
        yield f"http://{gateway}", f"http://{prom}"
    finally:
        procs.stop(started, timeout_s=15)
        for proc in started:
            print(f"--- {proc.name} log tail ---\n{procs.tail(proc.log)}")


async def leave_stuck_job(redis: aioredis.Redis) -> None:
    """An undecodable job held by a consumer that died: reclaimed, then dead-lettered."""
    await bus.ensure_group(redis, STREAM, streams.group("stt"))
    await redis.xadd(STREAM, {b"e": b"\x00not an envelope"})
    await redis.xreadgroup(streams.group("stt"), "crashed", {STREAM: ">"}, count=1)


async def query(http: httpx.AsyncClient, expr: str) -> list[dict[str, Any]]:
    response = await http.get("/api/v1/query", params={"query": expr})
    assert response.status_code == 200, f"{expr}: {response.text}"
    return response.json()["data"]["result"]  # type: ignore[no-any-return]


def finite(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(sample["value"][1])) for sample in result)


async def send_round(gateway: httpx.AsyncClient, prom: httpx.AsyncClient, n: int) -> None:
    """One good and one bad transcription, then wait until Prometheus has scraped them."""
    good = await gateway.post(
        "/v1/audio/transcriptions",
        files={"file": ("a.wav", (DATA / "en_short.wav").read_bytes())},
        data={"model": "tiny.en"},  # the local worker, not the registered external server
    )
    assert good.status_code == 200 and "consensus" in good.json()["text"].lower(), good.text
    bad = await gateway.post("/v1/audio/transcriptions", files={"file": ("x.wav", b"RIFF junk")})
    assert bad.status_code == 400, bad.text
    counted = (
        f'sum(pyparrot_http_requests_total{{route="/v1/audio/transcriptions"}}) >= {2 * n} '
        f'and sum(pyparrot_bus_roundtrip_seconds_count{{component="stt"}}) >= {n} '
        f'and sum(pyparrot_job_duration_seconds_count{{component="stt"}}) >= {n}'
    )
    await eventually(lambda: query(prom, counted), timeout_s=30)


@pytest.fixture
async def clients(
    stack: tuple[str, str], aredis: aioredis.Redis
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    await leave_stuck_job(aredis)
    gateway_url, prom_url = stack
    async with (
        httpx.AsyncClient(base_url=gateway_url, timeout=60) as gateway,
        httpx.AsyncClient(base_url=prom_url, timeout=10) as prom,
    ):
        yield gateway, prom


async def ready(http: httpx.AsyncClient, path: str) -> bool:
    try:
        return (await http.get(path)).status_code == 200
    except httpx.TransportError:
        return False


async def test_every_dashboard_query_has_data(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    gateway, prom = clients
    await eventually(lambda: ready(gateway, "/ready"), timeout_s=90)
    await eventually(lambda: ready(prom, "/-/ready"), timeout_s=30)
    all_up = 'count(up{job=~"pyparrot-.*"} == 1) == 3'
    await eventually(lambda: query(prom, all_up), timeout_s=30)
    with asr_server() as asr:  # the external adapter serves it, and reports its health
        body = {"component": "asr", "name": "ext1", "server": asr, "model": "ext"}
        registered = await gateway.post("/ltapi/register_worker", json=body)
        assert registered.status_code == 200, registered.text
        await eventually(lambda: query(prom, "pyparrot_external_server_up == 1"), timeout_s=30)
        for n in (1, 2):  # a scrape between the rounds makes every increase visible to rate()
            await send_round(gateway, prom, n)
    # The stuck job was reclaimed and dead-lettered, and the gateway's gauges saw it.
    await eventually(lambda: query(prom, "pyparrot_dead_letters > 0"), timeout_s=30)

    missing = []
    for name, title, expr in dashboard_queries():
        result = await query(prom, expr)
        if not finite(result):
            missing.append(f"{name} / {title}: {expr} -> {result}")
    assert not missing, "queries without data:\n" + "\n".join(missing)

    # The workers panel shows every stage, llm included, even with no worker.
    live = await query(prom, "max by (component) (pyparrot_workers)")
    assert {sample["metric"]["component"] for sample in live} >= monitor.STAGES

    values = await prom.get(
        "/api/v1/label/component/values", params={"match[]": "pyparrot_jobs_total"}
    )
    assert "stt" in values.json()["data"]  # the stage dashboard's variable query

    await eventually(lambda: alert_active(prom, "PyParrotDeadLetters"), timeout_s=30)
    groups = (await prom.get("/api/v1/rules")).json()["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    alerts = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())["groups"]
    written = {rule["alert"] for group in alerts for rule in group["rules"]}
    assert {rule["name"] for rule in rules} == written  # every rule of alerts.yml loaded
    assert all(rule["health"] == "ok" for rule in rules), rules


async def alert_active(prom: httpx.AsyncClient, name: str) -> bool:
    alerts = (await prom.get("/api/v1/alerts")).json()["data"]["alerts"]
    return any(a["labels"]["alertname"] == name for a in alerts)


def test_metric_names_in_dashboards_are_exported() -> None:
    """Every pyparrot_* series a dashboard reads is defined in shared/metrics.py (every
    process's) or services/gateway/metrics.py (the gateway's)."""
    sources = (ROOT / "shared" / "metrics.py", ROOT / "services" / "gateway" / "metrics.py")
    source = "\n".join(p.read_text() for p in sources)
    defined = set(re.findall(r'f"\{PREFIX\}_(\w+)"', source))
    for name, title, expr in dashboard_queries():
        for metric in re.findall(r"pyparrot_(\w+)", expr):
            base = re.sub(r"_(bucket|count|sum)$", "", metric)
            base = base.removesuffix("_total") if base not in defined else base
            assert base in defined or f"{base}_total" in defined, f"{name}/{title}: {metric}"

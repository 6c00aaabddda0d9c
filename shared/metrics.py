"""The metric base every process shares (prefix, buckets) and the worker's metrics, built
against a registry you pass in; the gateway's own live in ``services.gateway.metrics``.

Base units, ``_total`` counters, no session ids or text in labels, and latency buckets
that reach a minute because speech jobs are long.
"""

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "pyparrot"
SPEECH_BUCKETS_S = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    1.5,
    2.0,
    3.0,
    5.0,
    10.0,
    20.0,
    30.0,
    60.0,
)
RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


@dataclass(frozen=True)
class WorkerMetrics:
    jobs: Counter
    job_seconds: Histogram
    realtime_factor: Histogram
    reclaimed: Counter
    in_flight: Gauge
    external_up: Gauge
    external_down_marks: Counter


def worker_metrics(registry: CollectorRegistry) -> WorkerMetrics:
    """The metrics a worker process exports."""
    return WorkerMetrics(
        jobs=Counter(
            f"{PREFIX}_jobs_total",
            "Jobs finished by outcome (done, rejected, retry, dead, invalid, expired, cancelled)",
            ["component", "outcome"],
            registry=registry,
        ),
        job_seconds=Histogram(
            f"{PREFIX}_job_duration_seconds",
            "Handler time per job",
            ["component"],
            buckets=SPEECH_BUCKETS_S,
            registry=registry,
        ),
        realtime_factor=Histogram(
            f"{PREFIX}_realtime_factor",
            "Processing time divided by audio duration",
            ["component"],
            buckets=RTF_BUCKETS,
            registry=registry,
        ),
        reclaimed=Counter(
            f"{PREFIX}_reclaimed_total",
            "Jobs taken over from an idle or dead consumer",
            ["component"],
            registry=registry,
        ),
        in_flight=Gauge(
            f"{PREFIX}_jobs_in_flight", "Jobs being handled now", ["component"], registry=registry
        ),
        external_up=Gauge(
            f"{PREFIX}_external_server_up",
            "1 if a registered external server passed its last check or call, else 0",
            ["component", "server"],
            registry=registry,
        ),
        external_down_marks=Counter(
            f"{PREFIX}_external_server_down_total",
            "Times a registered external server was found down (jobs failed over)",
            ["component", "server"],
            registry=registry,
        ),
    )

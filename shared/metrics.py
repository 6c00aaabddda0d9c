"""Every Prometheus metric PyParrot exports, built against a registry you pass in.

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


@dataclass(frozen=True)
class GatewayMetrics:
    requests: Counter
    request_seconds: Histogram
    bus_roundtrip_seconds: Histogram
    workers: Gauge
    stream_backlog: Gauge
    stream_pending: Gauge
    dead_letters: Gauge
    duplicates_dropped: Counter
    jobs_withdrawn: Counter
    stream_lag: Gauge
    live_sessions: Gauge
    sse_listeners: Gauge


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


def gateway_metrics(registry: CollectorRegistry) -> GatewayMetrics:
    """The metrics the gateway exports on /metrics."""
    return GatewayMetrics(
        requests=Counter(
            f"{PREFIX}_http_requests_total",
            "HTTP requests by route and status code",
            ["route", "status"],
            registry=registry,
        ),
        request_seconds=Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "HTTP request latency",
            ["route"],
            buckets=SPEECH_BUCKETS_S,
            registry=registry,
        ),
        bus_roundtrip_seconds=Histogram(
            f"{PREFIX}_bus_roundtrip_seconds",
            "From job published to result received at the gateway",
            ["component"],
            buckets=SPEECH_BUCKETS_S,
            registry=registry,
        ),
        workers=Gauge(
            f"{PREFIX}_workers", "Live workers by component", ["component"], registry=registry
        ),
        stream_backlog=Gauge(
            f"{PREFIX}_stream_backlog", "Unfinished jobs in a stream", ["stream"], registry=registry
        ),
        stream_pending=Gauge(
            f"{PREFIX}_stream_pending",
            "Jobs delivered to a consumer and not yet acknowledged",
            ["stream"],
            registry=registry,
        ),
        dead_letters=Gauge(
            f"{PREFIX}_dead_letters",
            "Entries in a dead-letter stream",
            ["stream"],
            registry=registry,
        ),
        duplicates_dropped=Counter(
            f"{PREFIX}_duplicate_results_total",
            "Results dropped because their job was already answered",
            registry=registry,
        ),
        jobs_withdrawn=Counter(
            f"{PREFIX}_jobs_withdrawn_total",
            "Jobs taken off their stream because nobody waits for them any more (one a "
            "worker already holds still runs)",
            registry=registry,
        ),
        stream_lag=Gauge(
            f"{PREFIX}_stream_lag",
            "Jobs in a stream not yet delivered to its consumer group (what autoscaling uses)",
            ["stream", "group"],
            registry=registry,
        ),
        live_sessions=Gauge(
            f"{PREFIX}_live_sessions", "Live streaming sessions open now", registry=registry
        ),
        sse_listeners=Gauge(
            f"{PREFIX}_sse_listeners", "SSE listeners connected now", registry=registry
        ),
    )

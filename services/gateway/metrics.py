"""The metrics the gateway exports on /metrics, built against a registry you pass in.

Same conventions as ``shared.metrics`` (whose prefix and buckets they use): base units,
``_total`` counters, no session ids or text in labels.
"""

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.metrics import PREFIX, SPEECH_BUCKETS_S


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
    jobs_resubmitted: Counter
    stream_lag: Gauge
    live_sessions: Gauge
    sse_listeners: Gauge


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
        jobs_resubmitted=Counter(
            f"{PREFIX}_jobs_resubmitted_total",
            "Jobs submitted again because Redis lost them (or their result) before an answer",
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

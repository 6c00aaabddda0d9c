"""The markdown section of the dialog round-trip benchmark."""

import math
import statistics

from bench.dialog import DIRECT, HTTP, QUESTION, SPOKEN, WS, DialogResult
from bench.report import table
from bench.stats import ms

LABELS = {
    DIRECT: "in-process: `reply()` on SmolLM2 → first sentence → Piper (baseline)",
    WS: "**`/ws/converse` `text_input` → gateway → bus → LLM + TTS workers**",
    HTTP: "`POST /converse` (WAV) → gateway → bus → LLM + TTS workers",
    SPOKEN: "**the question spoken to `/ws/converse`** → VAD → STT → LLM → TTS, from the "
    "end of speech",
}


def _median_ms(values: list[float]) -> str:
    seen = [v for v in values if not math.isnan(v)]
    return ms(statistics.median(seen)) if seen else "–"


def _table(result: DialogResult) -> str:
    rows = []
    for name, samples in result.series.items():
        audio = result.values(name, "first_audio_s")
        speaking = [s.first_audio_s - s.first_sentence_s for s in samples]
        chars = [s.sentence_chars for s in samples if s.sentence_chars]
        rows.append(
            [LABELS[name], str(len(samples))]
            + [_median_ms(result.values(name, "first_token_s"))]
            + [_median_ms(result.values(name, "first_sentence_s"))]
            + [f"{statistics.median(chars):.0f}" if chars else "–", _median_ms(speaking)]
            + [_median_ms(audio), ms(max(audio)), ms(min(audio))]
            + [f"{result.ratio(name):.3f}×"]
        )
    headers = ["path", "n", "first token (ms)", "first sentence (ms)", "its length (chars)"]
    headers += ["first sentence → first audio (ms)", "first audio (ms)", "max (ms)", "min (ms)"]
    headers += ["first audio: median per-round ratio"]
    return table(headers, rows)


def render(result: DialogResult, header: str) -> str:
    """The markdown section for this benchmark."""
    config = result.config
    return "\n\n".join(
        [
            "## Voice assistant: end of the user's text → first reply audio",
            header,
            f'One typed question, "{QUESTION}", answered by {result.model} (llama.cpp via '
            f"xllamacpp, {config.cpu_threads} threads, temperature {result.temperature:g} (the "
            f"gateway's), replies capped at "
            f"{config.max_tokens} tokens) and spoken by {result.voice} (Piper, "
            f"{config.cpu_threads} threads), one turn at a time, interleaved round by round "
            "(each round starting with the next path), every turn read to its end. In "
            "process: the LLM worker's own `reply()` on a model loaded in the benchmark "
            "process, its first sentence spoken by the TTS worker's Piper wrapper while the "
            "model keeps writing, as in the product. `/ws/converse` is the live voice "
            "assistant (`pipeline: dialog`, default voice): timed from sending `text_input` "
            "to the first `llm_response` event and to the first binary audio frame (24 kHz "
            "PCM). `POST /converse` with `response_format: wav` is the HTTP assistant API, "
            "timed to its first body byte. Each gateway turn opens a new session, so every "
            "path sends the model the same system prompt and question. "
            f"{config.rounds} rounds after {config.warmup} warm-up round(s).",
            "Times are medians over the rounds unless marked; a dash is a time this path "
            "does not show.",
            _table(result),
            "The first token is measured in-process only, for reference: what the model "
            "alone costs before anything can be spoken. The model samples, so each turn's "
            "first sentence differs in length, and so does the time to speak it: compare "
            "medians over many rounds, and the sentence → audio leg (the TTS job, through "
            "the bus on the gateway paths) beside the sentence's length. " + _ratios(result),
            _spoken(result),
        ]
    )


def _spoken(result: DialogResult) -> str:
    """What hearing the question adds to a typed turn, if the spoken path ran."""
    if SPOKEN not in result.series:
        return "The spoken path did not run (quick mode)."
    heard = _median_ms(result.values(SPOKEN, "heard_s"))
    spoken = _median_ms(result.values(SPOKEN, "first_audio_s"))
    typed = _median_ms(result.values(WS, "first_audio_s")) if WS in result.series else "–"
    return (
        "Spoken turns: the question is Piper speech streamed at real-time pace in 100 ms "
        "chunks and followed by silence, with no `audio_complete`, so the gateway's VAD "
        "must find its end (a pause of `GATEWAY_LIVE_MIN_SILENCE_MS`; the final is started "
        "speculatively after `GATEWAY_LIVE_SPECULATE_SILENCE_MS`). End of speech → "
        f"`stt_final`: {heard} ms (median); → first reply audio: {spoken} ms, against "
        f"{typed} ms for the same question typed."
    )


def _ratios(result: DialogResult) -> str:
    names = {WS: "`/ws/converse`", HTTP: "`POST /converse`", SPOKEN: "spoken question"}
    found = [f"{names[p]} {result.ratio(p):.3f}×" for p in names if p in result.series]
    if not found:
        return "Only the in-process path ran."
    ratios = ", ".join(found)
    return f"First audio through the gateway vs in-process (median per-round ratio): {ratios}."

"""The markdown section of the speaker benchmark."""

from bench.report import table
from bench.speaker import COLLAR_S, THRESHOLD, SpeakerBenchResult, median
from bench.speaker_live import GAP_S, ProductResult
from bench.stats import ms, percentile


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def _der(result: SpeakerBenchResult) -> str:
    rows = [
        [
            "`pyannote_sample.wav` (30 s, 2 speakers, telephone)",
            case,
            str(result.speakers_found[case]),
            _pct(value),
        ]
        for case, value in result.der.items()
    ]
    n = len(result.conversation_der)
    counts = ", ".join(str(c) for c in result.conversation_counts)
    for name, values in (
        ("estimated", result.conversation_der),
        ("known (2)", result.conversation_der_known),
    ):
        rows.append(
            [
                f"{n} conversations of the two readers (turns 2-5 s)",
                name,
                counts if name == "estimated" else "2",
                f"mean {_pct(sum(values) / n)}, worst {_pct(max(values))}",
            ]
        )
    return table(["audio", "speaker count", "speakers found", "DER"], rows)


def _identification(result: SpeakerBenchResult) -> str:
    right = sum(
        1
        for probe, best, score, _ in result.genuine
        if probe.startswith(best) and score >= THRESHOLD
    )
    genuine = [score for _, _, score, _ in result.genuine]
    others = [other for _, _, _, other in result.genuine]
    impostors = [score for _, score in result.impostors]
    false_accepts = sum(1 for s in impostors if s >= THRESHOLD)
    voices = ", ".join(sorted({v for v, _ in result.impostors}))
    rows = [
        [
            "enrolled readers' other sentences",
            str(len(genuine)),
            f"{right}/{len(genuine)} identified",
            f"{min(genuine):.3f} / {median(genuine):.3f}",
            f"{max(others):.3f} (the other reader)",
        ],
        [
            f"never-enrolled voices ({voices})",
            str(len(impostors)),
            f"{false_accepts} false accepts",
            "-",
            f"{max(impostors):.3f}",
        ],
    ]
    return table(
        [
            "probes",
            "count",
            f"at cosine ≥ {THRESHOLD}",
            "own voiceprint min / median",
            "best wrong voiceprint (max)",
        ],
        rows,
    )


def _product(product: "ProductResult") -> str:
    def tally(pairs: list[tuple[str, str | None]]) -> tuple[str, str]:
        readers = [(e, h) for e, h in pairs if e]
        strangers = [h for e, h in pairs if not e]
        right = sum(1 for e, h in readers if e == h)
        wrong_accepts = sum(1 for h in strangers if h is not None)
        return f"{right}/{len(readers)}", f"{wrong_accepts}/{len(strangers)}"

    upload = tally([(e, h) for e, h, _ in product.upload])
    named = [pair for run in product.runs if run.with_speaker for pair in run.named]
    live = tally(named)
    rows = [
        ["upload, `POST /v1/speakers/identify`", upload[0], upload[1]],
        ["live sessions, `stt_final.person`", live[0], live[1]],
    ]
    return table(
        ["path", "readers' sentences named right", "strangers named (false accepts)"], rows
    )


def _latency(product: "ProductResult") -> str:
    with_ = [s for r in product.runs if r.with_speaker for s in r.latencies_s]
    without = [s for r in product.runs if not r.with_speaker for s in r.latencies_s]
    rounds = [
        sorted(pair, key=lambda r: not r.with_speaker)  # (with, without)
        for pair in zip(product.runs[::2], product.runs[1::2], strict=False)
    ]
    pairs = [
        a - b
        for on, off in rounds
        if len(on.latencies_s) == len(off.latencies_s)
        for a, b in zip(on.latencies_s, off.latencies_s, strict=True)
    ]
    missing = sum(r.finals_missing for r in product.runs)
    rows = [
        [
            "with the speaker worker",
            str(len(with_)),
            ms(percentile(with_, 50)),
            ms(percentile(with_, 90)),
        ],
        [
            "without (no speaker worker running)",
            str(len(without)),
            ms(percentile(without, 50)),
            ms(percentile(without, 90)),
        ],
    ]
    added = f"{ms(median(pairs))} ms" if pairs else "n/a"
    return (
        table(["live sessions", "finals", "p50 latency (ms)", "p90 (ms)"], rows)
        + f"\n\nMedian added latency, same sentence in paired sessions: **{added}**"
        + (f" ({missing} finals lost or merged, not paired)." if missing else ".")
    )


def render(result: SpeakerBenchResult, header: str) -> str:
    """The section: DER, identification, and the stage's time."""
    embed = result.embed_s
    return f"""## Speaker stage: diarization and enrolled voices

{header}

The worker's handler in-process on the shipped models (GE2E encoder exported to ONNX from
Resemblyzer 0.1.4, Silero VAD from faster-whisper, scikit-learn Ward clustering). DER by
`pyannote.metrics` with a ±{COLLAR_S} s collar (pyannote's `collar={2 * COLLAR_S}`), overlapping
speech scored: the telephone sample has three short overlaps, which a diarizer that gives each
10 ms one speaker always misses. No published DER for this sample was found to compare with;
pyannote's pipeline ships it as a demo file, not a benchmark.

{_der(result)}

Identification: each reader enrolled from sentences 1 and 2 (an `embed` job on both), every
other sentence embedded alone and matched to the most similar voiceprint; impostors are
synthetic voices that were never enrolled, matched against both.

{_identification(result)}

Through the product (processes: Redis, one STT worker tiny.en, one speaker worker, the
gateway): the readers enrolled with `POST /v1/speakers` (two files each), then every probe
above identified by upload, and spoken in live `/ws/converse` sessions (end2end, each sentence
followed by {GAP_S} s of silence, sent at {result.product.speed:g}× real time).

{_product(result.product)}

A final's latency: its arrival minus the moment its sentence's last sample was sent (it
includes the pause that ends the utterance). Sessions alternate with and without a speaker
worker in one run (which goes first alternates too); the voiceprint job runs beside the STT
job, so a final waits for the slower of the two.

{_latency(result.product)}

Time: one `embed` job on a 1.8-3.2 s sentence (what a live final would wait for) p50
{ms(percentile(embed, 50))} ms, max {ms(max(embed))} ms; diarizing the 30 s sample
{result.diarize_s:.2f} s."""

"""The markdown section of the live benchmark: PyParrot, each peer, and their ratio."""

import statistics
from collections.abc import Callable, Sequence

from bench.live import (
    PYPARROT,
    THREADS,
    WHISPERLIVE,
    WYOMING,
    Batch,
    LiveConfig,
    LiveResult,
    worker_shape,
)
from bench.live_score import Scores
from bench.live_tap import Job
from bench.report import table
from bench.stats import percentile

Samples = Callable[[Sequence[Scores]], list[float]]
FIGURES: dict[str, Samples] = {
    "speech → text, per word": lambda ss: [x for s in ss for x in s.word_lag_s],
    "utterance onset → first text": lambda ss: [x for s in ss for x in s.onset_lag_s],
    "end of utterance → final": lambda ss: [x for s in ss for x in s.final_lag_s],
    "end of audio → last final": lambda ss: [
        s.end_to_final_s for s in ss if s.end_to_final_s is not None
    ],
}


def _pooled(result: LiveResult) -> dict[tuple[str, int], list[Batch]]:
    """Batches by (label, concurrency), rounds pooled."""
    out: dict[tuple[str, int], list[Batch]] = {}
    for batch in result.batches:
        out.setdefault((batch.label, batch.concurrency), []).append(batch)
    return out


def _scores(batches: list[Batch]) -> list[Scores]:
    return [s for b in batches for s in b.scores]


def _q(samples: list[float], q: float) -> float | None:
    return percentile(samples, q) if samples else None


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _ratio(ours: float | None, peer: float | None) -> str:
    if ours is None or peer is None or peer <= 0:
        return "—"
    return f"{ours / peer:.2f}×"


def _completed(batches: list[Batch]) -> str:
    sessions = sum(len(b.traces) for b in batches)
    return f"{sum(s.completed for s in _scores(batches))}/{sessions}"


def _wer(batches: list[Batch], shown: bool = False) -> float | None:
    values = [s.wer_shown if shown else s.wer for s in _scores(batches)]
    return statistics.mean(values) if values else None


def _rows(batches: list[Batch]) -> dict[str, float | None]:
    """Every figure of one system at one concurrency, by row name."""
    scores = _scores(batches)
    rows: dict[str, float | None] = {}
    for name, samples in FIGURES.items():
        values = samples(scores)
        rows[f"{name} p50 (s)"] = _q(values, 50)
        rows[f"{name} p95 (s)"] = _q(values, 95)
    rows["final WER"] = _wer(batches)
    rows["WER of the text on screen at the end"] = _wer(batches, shown=True)
    rows["partial updates per session"] = (
        statistics.mean(s.partials for s in scores) if scores else None
    )
    rows["words never shown (per session)"] = (
        statistics.mean(s.words_missed for s in scores) if scores else None
    )
    rows["listened after the audio ended, max (s)"] = max(
        (s.waited_s for s in scores), default=None
    )
    return rows


def _versus(result: LiveResult, count: int, ours_label: str) -> str:
    pooled = _pooled(result)
    ours = _rows(pooled[(ours_label, count)])
    peers = [p for p in (WYOMING, WHISPERLIVE) if (p, count) in pooled]
    headers = ["figure", ours_label]
    for peer in peers:
        headers += [peer, f"{PYPARROT} ÷ {peer}"]
    body = []
    for name, value in ours.items():
        row = [name, _s(value) if "WER" not in name else _wer_s(value)]
        for peer in peers:
            theirs = _rows(pooled[(peer, count)])[name]
            row += [_s(theirs) if "WER" not in name else _wer_s(theirs), _ratio(value, theirs)]
        body.append(row)
    done = [_completed(pooled[(ours_label, count)])]
    for peer in peers:
        done += [_completed(pooled[(peer, count)]), ""]
    body.append(["sessions completed", *done])
    return table(headers, body)


def _wer_s(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _concurrency(result: LiveResult) -> str:
    pooled = _pooled(result)
    headers = ["sessions", "system", "completed", "speech → text p50 / p95 (s)"]
    headers += ["end of utterance → final p50 / p95 (s)", "end of audio → last final p50 / p95 (s)"]
    headers += ["final WER", "listened after the audio, max (s)"]
    body = []
    for count in result.config.concurrency:
        for (label, n), batches in pooled.items():
            if n != count:
                continue
            rows = _rows(batches)

            def pair(name: str, rows: dict[str, float | None] = rows) -> str:
                return f"{_s(rows[f'{name} p50 (s)'])} / {_s(rows[f'{name} p95 (s)'])}"

            body.append(
                [str(count), label, _completed(batches), pair("speech → text, per word")]
                + [pair("end of utterance → final"), pair("end of audio → last final")]
                + [_wer_s(rows["final WER"]), _s(rows["listened after the audio ended, max (s)"])]
            )
    return table(headers, body)


def _ratios(result: LiveResult) -> str:
    """p95 of the headline figures at each concurrency: PyParrot's best over each peer's."""
    pooled = _pooled(result)
    ours_labels = sorted({b.label for b in result.batches if b.system == PYPARROT})
    peers = [p for p in (WYOMING, WHISPERLIVE) if any(b.system == p for b in result.batches)]
    figures = ["speech → text, per word p95 (s)", "end of audio → last final p95 (s)"]
    headers = ["sessions", "figure", *ours_labels, *peers]
    headers += [f"best {PYPARROT} ÷ {p}" for p in peers]
    body = []
    for count in result.config.concurrency:
        for figure in figures:
            ours = [_rows(pooled[(label, count)])[figure] for label in ours_labels]
            theirs = [_rows(pooled[(p, count)])[figure] if (p, count) in pooled else None
                      for p in peers]  # fmt: skip
            best = min((v for v in ours if v is not None), default=None)
            body.append(
                [str(count), figure.removesuffix(" (s)"), *map(_s, ours), *map(_s, theirs)]
                + [_ratio(best, t) for t in theirs]
            )
    return table(headers, body)


def _job_rows(jobs: list[Job], kind: str) -> list[str]:
    mine = [j for j in jobs if j.kind == kind]
    queued = [j.queued_s for j in mine if j.queued_s is not None]
    busy = [j.processing_s for j in mine if j.processing_s is not None]
    audio = [j.audio_s for j in mine]
    unanswered = sum(j.outcome != "done" for j in mine)
    return [
        f"{len(mine)} ({unanswered})",
        f"{_s(_q(queued, 50))} / {_s(_q(queued, 95))}",
        f"{_s(_q(busy, 50))} / {_s(_q(busy, 95))}",
        f"{_s(_q(audio, 50))} / {_s(max(audio, default=None))}",
    ]


def _breakdown(result: LiveResult) -> str:
    """PyParrot's STT jobs per batch, as the bus saw them (``live_tap``)."""
    pooled = _pooled(result)
    headers = ["system", "sessions", "job", "jobs (not done)", "queued p50 / p95 (s)"]
    headers += ["decode p50 / p95 (s)", "audio p50 / max (s)", "client: partial gap p50 (s)"]
    body = []
    for (label, count), batches in pooled.items():
        if not label.startswith(PYPARROT):
            continue
        jobs = [j for b in batches for j in b.jobs]
        gaps = [g for s in _scores(batches) for g in s.partial_gaps_s]
        for kind in ("partial", "final"):
            gap = _s(_q(gaps, 50)) if kind == "partial" else ""
            body.append([label, str(count), kind, *_job_rows(jobs, kind), gap])
    return table(headers, body)


def _threads(config: LiveConfig) -> str:
    """How each PyParrot phase's workers used the threads."""
    return ", ".join(
        f"{n} worker{'s' if n > 1 else ''} × ({worker_shape(config, n).describe()})"
        for n in config.workers
    )


def render(result: LiveResult, header: str) -> str:
    """The markdown section for this benchmark."""
    config, clip, offline = result.config, result.clip, result.offline
    ours_one = next(b.label for b in result.batches if b.system == PYPARROT)
    parts = [
        "## Live captions at 1× real time: PyParrot vs wyoming-faster-whisper and WhisperLive",
        header,
        f"Clip: `{clip.name}` ({clip.duration_s:.1f} s, {len(offline.words)} words), sent by "
        f"each session in {config.chunk_s * 1000:.0f} ms chunks at real-time pace. Every system "
        f"runs the bundled tiny.en (CTranslate2, int8, beam 1) on {THREADS} CPU threads per "
        "model call on this 2-core machine: the peers' one model, PyParrot's STT workers "
        f"({_threads(config)}: two calls at once share the cores). PyParrot: the "
        "real gateway (`/ws/converse`, pipeline end2end) and `services.stt` workers on a "
        "private Redis. "
        + (
            "PyParrot over WebRTC: the same gateway and workers, the clip as an aiortc "
            "microphone track (20 ms Opus frames over loopback UDP, `POST /offer`, "
            "`bench/live_webrtc.py`), events on the data channel, `audio_complete` sent when "
            "the track goes quiet after the clip (the gateway then waits 0.25 s of quiet). "
            if config.webrtc
            else ""
        )
        + "wyoming-faster-whisper: one request per session, audio-stop at the "
        "end. WhisperLive 0.10.0 (its own venv, `bench/whisperlive.py`): its faster_whisper "
        "backend, one shared model, its client's default options; it sends nothing final "
        "until a segment decodes identically 10 times, and closes at once on END_OF_AUDIO, "
        f"so its clients keep listening up to {config.whisperlive_wait_s:g} s after the audio "
        "(stopping early once nothing is unconfirmed and nothing new came for 1 s). "
        f"{config.rounds} batch(es) per system and concurrency.",
        "Definitions (client clock; a sample is *heard* when the chunk holding it was sent): "
        "**speech → text**: per word of the offline transcription, the first time the client "
        "shows it (finals + open partial, aligned to the words already begun) minus when its "
        "last sample was heard. **utterance onset → first text**: utterances are runs of "
        "offline words with pauses < 0.3 s; first text of it minus its first sample heard. "
        "**end of utterance → final**: per final message, arrival minus when the last sample "
        "of the last word it holds was heard. **end of audio → last final**: the last final's "
        "arrival minus the last chunk sent. **Completed**: the system confirmed all its text "
        "(PyParrot: `audio_processed`; wyoming: its transcript; WhisperLive: nothing left "
        "unconfirmed). Ratios: PyParrot ÷ peer (below 1 = PyParrot better).",
        f"Offline baseline: the whole clip in one call (same model and settings): WER "
        f"{offline.wer:.3f} in {offline.seconds:.2f} s.",
        "### One session",
        _versus(result, 1, ours_one) if 1 in config.concurrency else "(not run)",
        "### Concurrent sessions",
        _concurrency(result),
    ]
    if any(b.system != PYPARROT for b in result.batches):
        parts += ["p95 ratios at each concurrency:", _ratios(result)]
    parts += [
        "### Where PyParrot's time goes",
        "Each STT job as the bus saw it (a tap on the job streams and the gateway's reply "
        "stream): queued = submitted → a worker's handler started; decode = the handler's "
        "own time; audio = the job's audio length; not done = answered otherwise (a partial no "
        "worker started in time is answered `expired`) or not at all. Partial gap: time "
        "between successive partial updates at one client.",
        _breakdown(result),
    ]
    return "\n\n".join(parts)

"""Does the model's probability of a sentence mark tell a sentence's end from a pause inside
one? The question a live session asks at every pause (``services/stt/sentence_end.py``).

``python -m bench.sentence_end [--json PATH] [--model base]``

Clips: the 12 real sentences (two readers, one file each), the same with real noise at 10 dB
SNR, and the multi-sentence clips of ``bench.live_corpus`` (Piper lectures, the espeak-ng
lecture, the rhetorical speech, the two-person conversation). Sentences are the model's own:
the in-process decode of the whole clip, split after each word that ends with a mark. For
each sentence, the STT handler decodes as a live final the audio from its start to each word
boundary inside it and to its end, with 0.2 s of silence after (what a speculation at a
pause sees). Per group and threshold: how many ends the text marks *and* the probability
confirms (the rest wait for the long pause), and how many inner boundaries the text marks
(each a cut where the speaker only paused) that the probability still lets through.
"""

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bench import whisperlive
from bench.live_corpus import REAL, corpus, read_wav
from services.gateway.live.engine.transcriber import ends_sentence
from services.stt.handler import transcribe
from services.stt.model import SttModel, load_model
from services.stt.settings import SttSettings
from shared.audio import float32_to_pcm16
from shared.messages import AudioFormat, SttMode, TranscribeRequest

RATE_HZ = 16_000
PAUSE = np.zeros(int(0.2 * RATE_HZ), dtype=np.float32)
THRESHOLDS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.96, 0.97)
SNR_DB = 10.0
MULTI = ("lecture", "rhetorical", "conversation")


@dataclass(frozen=True)
class Cut:
    group: str
    clip: str
    end: bool  # the sentence's end (else a boundary inside it)
    text: str
    marked: bool  # the text ends as a sentence does
    p: float | None


def _words(model: SttModel, audio: np.ndarray) -> list[tuple[str, float, float]]:
    segments, _ = model.whisper.transcribe(audio, language="en", beam_size=1, word_timestamps=True)
    return [(w.word.strip(), w.start, w.end) for s in segments for w in s.words or []]


def _sentences(words: list[tuple[str, float, float]]) -> list[list[tuple[str, float, float]]]:
    out: list[list[tuple[str, float, float]]] = [[]]
    for w in words:
        out[-1].append(w)
        if w[0].endswith((".", "?", "!")):
            out.append([])
    return [s for s in out if len(s) >= 2]


def _noisy(audio: np.ndarray, k: int) -> np.ndarray:
    noise = read_wav(REAL / "noise" / f"noise{1 + k % 4}.wav")
    noise = np.resize(noise, len(audio))
    gain = np.sqrt(np.mean(audio**2) / max(np.mean(noise**2), 1e-12) / 10 ** (SNR_DB / 10))
    return (audio + gain * noise).astype(np.float32)


def _decode(model: SttModel, settings: SttSettings, audio: np.ndarray) -> tuple[str, float | None]:
    pcm = float32_to_pcm16(np.concatenate([audio, PAUSE]))
    request = TranscribeRequest(  # English audio: a multilingual model is told so
        audio=pcm,
        audio_format=AudioFormat(),
        mode=SttMode.LIVE_FINAL,
        word_timestamps=True,
        language="en",
    )
    result = transcribe(model, settings, request)
    return result.text, result.sentence_end_p


def _cuts(model: SttModel, s: SttSettings, group: str, clip: str, audio: np.ndarray) -> list[Cut]:
    cuts = []
    for sentence in _sentences(_words(model, audio)):
        start = max(sentence[0][1] - 0.2, 0.0)
        inner = [(a[2] + b[1]) / 2 for a, b in zip(sentence, sentence[1:], strict=False)]
        ends = [(t, False) for t in inner] + [
            (min(sentence[-1][2] + 0.1, len(audio) / RATE_HZ), True)
        ]
        for at, is_end in ends:
            text, p = _decode(model, s, audio[int(start * RATE_HZ) : int(at * RATE_HZ)])
            cuts.append(Cut(group, clip, is_end, text, bool(text) and ends_sentence(text), p))
    return cuts


def _clips() -> list[tuple[str, str, np.ndarray]]:
    real = sorted(REAL.glob("spk*_snt*.wav"))
    out = [("real sentences", p.stem, read_wav(p)) for p in real]
    out += [
        (f"real + noise {SNR_DB:.0f} dB", p.stem, _noisy(read_wav(p), k))
        for k, p in enumerate(real)
    ]
    cache = whisperlive.DEFAULT_CACHE
    cache.mkdir(parents=True, exist_ok=True)
    for item in corpus(cache):
        if any(k in item.name for k in MULTI):
            group = "conversation" if "conversation" in item.name else "synthetic speech"
            out.append((group, item.name, item.audio))
    return out


def render(cuts: list[Cut]) -> str:
    groups = sorted({c.group for c in cuts})
    head = "| group | sentence ends | ends marked | inner boundaries | inner marked (cuts today) |"
    lines = [
        head + "".join(f" p ≥ {t}: ends / cuts |" for t in THRESHOLDS[1:]),
        "|---" * (5 + len(THRESHOLDS) - 1) + "|",
    ]
    for g in groups:
        rows = [c for c in cuts if c.group == g]
        ends = [c for c in rows if c.end]
        inner = [c for c in rows if not c.end]
        cells = [
            g,
            str(len(ends)),
            str(sum(c.marked for c in ends)),
            str(len(inner)),
            str(sum(c.marked for c in inner)),
        ]
        for t in THRESHOLDS[1:]:
            ok = sum(c.marked and (c.p is None or c.p >= t) for c in ends)
            bad = sum(c.marked and (c.p is None or c.p >= t) for c in inner)
            cells.append(f"{ok} / {bad}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sentence_end", description=__doc__)
    parser.add_argument("--json", type=Path, help="write every cut here")
    parser.add_argument("--model", default="tiny.en", help="STT_MODEL to ask (default tiny.en)")
    args = parser.parse_args(argv)
    settings = SttSettings(model=args.model)
    model = load_model(settings)
    cuts: list[Cut] = []
    for group, clip, audio in _clips():
        cuts += _cuts(model, settings, group, clip, audio)
        print(f"{group} {clip}: {len(cuts)} cuts so far", file=sys.stderr, flush=True)
    print(render(cuts))
    if args.json:
        args.json.write_text(json.dumps([asdict(c) for c in cuts], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

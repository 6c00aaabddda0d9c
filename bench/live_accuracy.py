"""Live captions' accuracy against the model called in-process, over the live corpus.

``python -m bench.live_accuracy [--paths ws1,ws4,webrtc] [--env GATEWAY_LIVE_X=V ...]
[--model base]``

Each clip of ``bench.live_corpus`` goes through a private stack (Redis, one STT worker,
the gateway with the given settings) as a live session: over ``/ws/converse`` at 1× and 4×
real time and over WebRTC. Per clip and path: the finals' WER against the in-process text
(and against the human reference, where there is one), and the sentence-final marks
(``. ! ?``) the live text has beyond the in-process text's: punctuation invented by
cutting a sentence into utterances.
"""

import argparse
import asyncio
import json
import pickle
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from bench import whisperlive
from bench.live import FULL as LIVE_FULL
from bench.live import set_stt_workers, start_gateway, worker_shape
from bench.live_corpus import Item, corpus, in_process
from bench.quality_live import live_text, webrtc_text
from bench.stack import Stack
from shared.textnorm import wer

PATHS = {"ws1": "socket 1×", "ws4": "socket 4×", "webrtc": "WebRTC 1×"}
AT_ONCE = 2  # sessions at once: halves the wall time, as two users would
MARK = re.compile(r"[.!?](?=\s|$)")


@dataclass(frozen=True)
class Row:
    item: str
    path: str
    text: str
    wer_model: float
    wer_human: float | None
    extra_marks: int


def _references(cache: Path, model: str) -> list[tuple[Item, str]]:
    suffix = "" if model == "tiny.en" else f".{model}"
    stored = cache / f"live_accuracy_corpus{suffix}.pkl"
    if stored.exists():
        return pickle.loads(stored.read_bytes())  # type: ignore[no-any-return]
    pairs = [(item, in_process(item.audio, model).text) for item in corpus(cache)]
    stored.write_bytes(pickle.dumps(pairs))
    return pairs


async def _one(url: str, path: str, item: Item, model_text: str, gate: asyncio.Semaphore) -> Row:
    async with gate:
        wav = _wav(item)
        text = await (webrtc_text(url, wav) if path == "webrtc" else
                      live_text(url, wav, 4.0 if path == "ws4" else 1.0))  # fmt: skip
    human = wer(item.reference, text) if item.reference else None
    extra = len(MARK.findall(text)) - len(MARK.findall(model_text))
    row = Row(item.name, path, text, wer(model_text, text), human, extra)
    print(f"{path} {item.name}: WER {row.wer_model:.3f} marks {extra:+d} | {text}", flush=True)
    return row


def _wav(item: Item) -> bytes:
    import io
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16_000)
        wav.writeframes(item.pcm16)
    return out.getvalue()


async def _run(url: str, paths: list[str], pairs: list[tuple[Item, str]]) -> list[Row]:
    gate = asyncio.Semaphore(AT_ONCE)
    jobs = [_one(url, p, item, text, gate) for p in paths for item, text in pairs]
    return list(await asyncio.gather(*jobs))


def render(rows: list[Row], pairs: list[tuple[Item, str]]) -> str:
    """A markdown table: WER against the model (and humans), extra marks, per clip and path."""
    paths = list(dict.fromkeys(r.path for r in rows))
    head = "| clip | in-process vs human | " + " | ".join(PATHS[p] for p in paths) + " |"
    lines = [head, "|" + "---|" * (2 + len(paths))]
    by = {(r.item, r.path): r for r in rows}
    for item, text in pairs:
        human = f"{wer(item.reference, text):.3f}" if item.reference else "–"
        cells = []
        for p in paths:
            r = by[(item.name, p)]
            cells.append(f"{r.wer_model:.3f} ({r.extra_marks:+d})")
        lines.append(f"| {item.name} | {human} | " + " | ".join(cells) + " |")
    means = []
    for p in paths:
        mine = [by[(i.name, p)] for i, _t in pairs]
        words = [len(t.split()) for _i, t in pairs]
        pooled = sum(r.wer_model * n for r, n in zip(mine, words, strict=True)) / sum(words)
        means.append(f"**{pooled:.3f}** ({sum(r.extra_marks for r in mine):+d})")
    lines.append("| all (word-weighted) | | " + " | ".join(means) + " |")
    return "\n".join([*lines, "", _against_humans(rows, pairs)])


def _against_humans(rows: list[Row], pairs: list[tuple[Item, str]]) -> str:
    """Pooled WER against the human references: the model in-process, then each path."""
    known = [(i, t) for i, t in pairs if i.reference]
    words = {i.name: len(i.reference.split()) for i, _t in known}
    total = sum(words.values())
    model = sum(wer(i.reference, t) * words[i.name] for i, t in known) / total
    parts = [f"in-process {model:.3f}"]
    for p in dict.fromkeys(r.path for r in rows):
        mine = [r for r in rows if r.path == p and r.item in words]
        live = sum((r.wer_human or 0.0) * words[r.item] for r in mine) / total
        parts.append(f"{PATHS[p]} {live:.3f} ({100 * (live - model):+.1f} points)")
    return "Clips with a human reference, pooled WER against it: " + "; ".join(parts) + "."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.live_accuracy", description=__doc__)
    parser.add_argument("--paths", default="ws1,ws4,webrtc")
    parser.add_argument("--env", action="append", default=[], help="gateway KEY=VALUE")
    parser.add_argument("--only", help="clips whose name holds one of these (a,b)")
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--model", default="tiny.en", help="the STT worker's and the reference's")
    args = parser.parse_args(argv)
    cache = whisperlive.DEFAULT_CACHE
    cache.mkdir(parents=True, exist_ok=True)
    pairs = _references(cache, args.model)
    if args.only:
        pairs = [(i, t) for i, t in pairs if any(k in i.name for k in args.only.split(","))]
    env = {"GATEWAY_DEFAULT_STT_MODEL": args.model} | dict(kv.split("=", 1) for kv in args.env)
    with Stack() as stack:
        set_stt_workers(stack, 1, replace(worker_shape(LIVE_FULL, 1), model=args.model))
        url = start_gateway(stack, env).removesuffix("/ws/converse")
        rows = asyncio.run(_run(url, args.paths.split(","), pairs))
    print(render(rows, pairs))
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m bench.langid``: spoken-language ID on ``bench.langid_corpus``, per language,
for the plain in-process model (the reference) and the product's rule, on the held-out half
and on all clips.

``--features PATH`` keeps each clip's measurements (JSON lines, appended as they come, so an
interrupted run resumes); ``bench.langid_rules`` compares other rules on them offline.
"""

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from bench import langid_corpus
from bench.langid_corpus import LangClip
from bench.langid_features import ClipFeatures, as_json, from_json, measure
from bench.langid_rules import OLD_CANDIDATES, RULES, table

LANGUAGES = ("es", "pt", "de", "fr", "it", "en")


def load_features(path: Path) -> list[ClipFeatures]:
    if not path.exists():
        return []
    return [from_json(json.loads(line)) for line in path.read_text().splitlines() if line]


def clips(name: str, seed: int) -> list[LangClip]:
    """The clips of set ``name``: the seeded corpus (dev and held-out halves) or the plain
    voices (all held out)."""
    return langid_corpus.corpus(seed) if name == "corpus" else list(langid_corpus.plain())


def run(
    path: Path, seed: int, threads: int, model_name: str, with_reference: bool, name: str
) -> list[ClipFeatures]:
    """Measure every clip not yet in ``path``."""
    from faster_whisper import WhisperModel

    from services.stt.model import load_model, resolve_model_path
    from services.stt.settings import SttSettings

    done = {f.name for f in load_features(path)}
    settings = SttSettings(model=model_name, cpu_threads=threads, concurrency=1)
    model = load_model(settings)
    plain = None
    if with_reference:
        weights = str(resolve_model_path(settings))
        plain = WhisperModel(weights, compute_type=settings.compute_type, cpu_threads=threads)
    todo = [c for c in clips(name, seed) if c.name not in done]
    started = time.perf_counter()
    with path.open("a") as out:
        for index, clip in enumerate(todo):
            features = measure(plain, model, settings, clip)
            out.write(json.dumps(as_json(features), ensure_ascii=False) + "\n")
            out.flush()
            elapsed = time.perf_counter() - started
            print(f"{index + 1}/{len(todo)} {clip.name} {elapsed:.0f}s", flush=True)
    return load_features(path)


def check(seed: int, threads: int, old_module: Path | None, held_out_only: bool, name: str) -> str:
    """Run the plain model, the product's ``choose_language`` and (optionally) an earlier
    ``langid.py`` on every clip, as they run: the table without the offline features."""
    import importlib.util

    from faster_whisper import WhisperModel

    from services.stt.langid import choose_language
    from services.stt.model import load_model, resolve_model_path
    from services.stt.settings import SttSettings

    settings = SttSettings(model="base", cpu_threads=threads, concurrency=1)
    model = load_model(settings)
    path = str(resolve_model_path(settings))
    plain = WhisperModel(path, compute_type=settings.compute_type, cpu_threads=threads)
    chooser: dict[str, Callable[..., object]] = {"new": choose_language}
    old_settings = settings.model_copy(update={"language_candidates": list(OLD_CANDIDATES)})
    if old_module is not None:
        spec = importlib.util.spec_from_file_location("old_langid", old_module)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        chooser["old"] = module.choose_language
    rows: list[tuple[LangClip, dict[str, str]]] = []
    for clip in clips(name, seed):
        if held_out_only and not clip.held_out:
            continue
        _segments, info = plain.transcribe(clip.audio, beam_size=1, vad_filter=True)
        got = {"reference": info.language}
        for name, choose in chooser.items():
            # The earlier rule ran with the expected languages of its day.
            run = settings if name == "new" else old_settings
            got[name] = choose(model, run, clip.audio).language  # type: ignore[attr-defined]
        rows.append((clip, got))
        print(clip.name, clip.how, got, flush=True)
    return real_table(rows, ["reference", *chooser])


def real_table(rows: list[tuple[LangClip, dict[str, str]]], names: list[str]) -> str:
    head = ["language", *[f"{n} (held-out)" for n in names], *[f"{n} (all)" for n in names]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for code in (*LANGUAGES, "all"):
        mine = [(c, g) for c, g in rows if code in ("all", c.language)]
        held = [(c, g) for c, g in mine if c.held_out]
        cells = [
            f"{sum(g[n] == c.language for c, g in group)}/{len(group)}"
            for group in (held, mine)
            for n in names
        ]
        lines.append("| " + " | ".join([code, *cells]) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--set", choices=("corpus", "plain"), default="corpus", dest="clips")
    parser.add_argument("--features", type=Path, help="default /tmp/pyparrot-langid-SET.jsonl")
    parser.add_argument("--seed", type=int, default=langid_corpus.SEED)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="base")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--check", action="store_true", help="run the rules, not features")
    parser.add_argument("--held-out-only", action="store_true", help="with --check")
    parser.add_argument("--old-module", type=Path, help="an earlier services/stt/langid.py")
    parser.add_argument("--rules", default="reference,old,previous,new")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.check:
        print(check(args.seed, args.threads, args.old_module, args.held_out_only, args.clips))
        return
    path = args.features or Path(f"/tmp/pyparrot-langid-{args.clips}.jsonl")
    features = run(path, args.seed, args.threads, args.model, not args.no_reference, args.clips)
    rules = {name: RULES[name] for name in args.rules.split(",")}
    print(table(features, rules, LANGUAGES))


if __name__ == "__main__":
    main()

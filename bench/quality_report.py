"""The ``quality`` section of docs/BENCHMARKS.md from a ``bench.quality`` run."""

from collections import defaultdict

from bench.quality import FILE_PATHS, QualityResult, Row
from bench.quality_score import total

SINGLE = ("en", "es", "pt", "de", "fr")


def _paths(rows: list[Row]) -> str:
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        groups[row.path].append(row)
    lines = [
        "| path | samples | words | WER | in-process WER, same samples | loss (points) "
        "| words lost at start / end | in-process: lost at start / end | language right "
        "| s per sample |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for path, group in groups.items():
        mine, ref = total([r.score for r in group]), total([r.reference for r in group])
        spoken = [r for r in group if r.sample.clip.language in SINGLE and r.heard.language]
        right = sum(r.heard.language == r.sample.clip.language for r in spoken)
        language = f"{right}/{len(spoken)}" if spoken else "–"
        seconds = sum(r.heard.seconds for r in group) / len(group)
        lines.append(
            f"| {path} | {len(group)} | {mine.words} | {mine.wer:.3f} | {ref.wer:.3f} "
            f"| {100 * (mine.wer - ref.wer):+.1f} | {mine.start_lost} / {mine.end_lost} "
            f"| {ref.start_lost} / {ref.end_lost} | {language} | {seconds:.2f} |"
        )
    return "\n".join(lines)


def _conditions(rows: list[Row]) -> str:
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        if row.path == "http":
            groups[row.sample.condition].append(row)
    lines = [
        "| condition | samples | HTTP WER | in-process WER | loss (points) |",
        "|---|---|---|---|---|",
    ]
    for condition, group in groups.items():
        mine, ref = total([r.score for r in group]), total([r.reference for r in group])
        lines.append(
            f"| {condition} | {len(group)} | {mine.wer:.3f} | {ref.wer:.3f} "
            f"| {100 * (mine.wer - ref.wer):+.1f} |"
        )
    return "\n".join(lines)


def _end_losses(rows: list[Row]) -> str:
    """Samples where a path lost more words at the end than the model in-process."""
    worse = [r for r in rows if r.score.end_lost > r.reference.end_lost]
    if not worse:
        return "No path lost a word at the end of a sample that the model in-process kept."
    lines = ["Samples where a path lost words at the end that the model in-process kept:", ""]
    lines += [
        f"- {r.path}, `{r.sample.name}`: {r.score.end_lost} (in-process {r.reference.end_lost}; "
        f"WER there: path {r.score.wer:.2f}, in-process {r.reference.wer:.2f})"
        for r in worse
    ]
    return "\n".join(lines)


def _models(result: QualityResult) -> str:
    lines = [
        "| model, in-process | English samples | WER | s per sample | spoken language right |",
        "|---|---|---|---|---|",
    ]
    for model in ("tiny.en", "base"):
        rows = [r for r in result.rows if r.path == f"in-process {model}"]
        english = [r for r in rows if r.sample.clip.language == "en"]
        if not english:
            continue
        mine = total([r.score for r in english])
        seconds = sum(r.heard.seconds for r in english) / len(english)
        spoken = [r for r in rows if r.sample.clip.language in SINGLE[1:]]
        right = sum(r.heard.language == r.sample.clip.language for r in spoken)
        language = f"{right}/{len(spoken)} non-English" if spoken else "English only"
        lines.append(f"| {model} | {len(english)} | {mine.wer:.3f} | {seconds:.2f} | {language} |")
    return "\n".join(lines)


def render(result: QualityResult, header: str) -> str:
    """The section body: per path, per condition, the tails, the models, code-switching."""
    rows = result.rows
    paths = ", ".join(FILE_PATHS)
    switch = ", then ".join(result.switch_languages)
    parts = [
        "## Quality: every path against the model in-process",
        header,
        "WER is pooled over the samples (each weighted by its reference words); a sample "
        "without a human reference (the conversation) is scored against the in-process "
        "model's own text. The in-process reference is the model that answered the path "
        f"(the HTTP reply's `x-pyparrot-model`; {paths} with `whisper-1`; the live paths "
        "use the gateway's default model). Loss = path WER − in-process WER on the same "
        "samples, in points. Timings are on a shared machine: orientation only.",
        _paths(rows),
        "Per condition (HTTP upload, `whisper-1`):",
        _conditions(rows),
        _end_losses(rows),
        f"HTTP uploads the gateway closed without an answer (each retried): {result.dropped}.",
        "Calls that failed after retries (left out above): "
        + (", ".join(f"{p} {n}" for p, n in result.failures.items()) or "none")
        + ".",
    ]
    if result.switch_languages:
        parts.append(f"Code-switched clip (English, then German) over HTTP: segments in {switch}.")
    if result.config.compare_models:
        parts += ["Models in-process on the same corpus:", _models(result)]
    return "\n\n".join(parts)

"""The CTranslate2 engine: a translation model the user supplies, with its SentencePiece
model(s), such as an OPUS-MT (Marian) or NLLB conversion.

Sentences are cut into pieces with SentencePiece, decoded together in one
``translate_batch`` call, and joined back. The model directory does not say which
languages it translates, so ``MT_PAIRS`` names them. A one-pair model (OPUS-MT) needs
nothing more; a many-to-many model (NLLB) also needs ``MT_LANGUAGE_TOKENS``: the source
language's token starts the input and the target's is forced as the first output token,
the way NLLB was trained. Every problem with the files is found at load, as a
``ModelError`` naming the setting, so a misconfigured worker never reaches "ready".
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ctranslate2
import sentencepiece as spm

from services.mt.engine import ModelError
from services.mt.settings import MtSettings

SOURCE_SPM_NAMES = ("source.spm", "sentencepiece.bpe.model", "sentencepiece.model")
TARGET_SPM_NAMES = ("target.spm",)


@dataclass(frozen=True)
class Ct2Engine:
    translator: ctranslate2.Translator
    source_spm: spm.SentencePieceProcessor
    target_spm: spm.SentencePieceProcessor
    pairs: list[str]
    label: str  # the model directory's name, shown in the advertised model name
    settings: MtSettings
    source_end: list[str]  # appended to every input unless the model adds it itself

    def name(self, pair: str) -> str:
        """The model name a pair advertises, e.g. ``ctranslate2:opus-mt-en-pt:en-pt``."""
        return f"ctranslate2:{self.label}:{pair}"

    def translate(self, text: str, pair: str) -> str:
        """Translate one sentence."""
        return self.translate_batch([text], pair)[0]

    def translate_batch(self, texts: Sequence[str], pair: str) -> list[str]:
        """Translate several sentences in one model call (split into ``MT_BATCH_SIZE``)."""
        if not texts:
            return []
        tokens = self.settings.language_tokens
        source, target = pair.split("-")
        start = [tokens[source]] if tokens else []
        prefix = [tokens[target]] if tokens else []
        pieces = self.source_spm.encode(list(texts), out_type=str)
        results = self.translator.translate_batch(
            [start + p + self.source_end for p in pieces],
            target_prefix=[prefix] * len(texts) if prefix else None,
            beam_size=self.settings.beam_size,
            max_batch_size=self.settings.batch_size,
        )
        # The forced prefix comes back at the start of each hypothesis; it is not text.
        return [self.target_spm.decode(r.hypotheses[0][len(prefix) :]) for r in results]


def model_dir(settings: MtSettings) -> Path:
    """The configured CTranslate2 model directory; it must hold ``model.bin``."""
    if not settings.model_dir:
        raise ModelError("MT_MODEL_DIR is required with MT_ENGINE=ctranslate2")
    path = Path(settings.model_dir).expanduser()
    if not (path / "model.bin").is_file():
        raise ModelError(
            f"MT_MODEL_DIR={settings.model_dir!r}: not a CTranslate2 model directory "
            "(no model.bin there)"
        )
    return path


def spm_path(directory: Path, configured: str, defaults: Sequence[str], setting: str) -> Path:
    """The configured SentencePiece file (a name in ``directory`` or a path), or a default."""
    if configured:
        path = directory / Path(configured).expanduser()  # an absolute path stays as it is
        if not path.is_file():
            raise ModelError(f"{setting}={configured!r}: no such file ({path})")
        return path
    for name in defaults:
        if (directory / name).is_file():
            return directory / name
    raise ModelError(f"{setting} is not set and {directory} holds none of {list(defaults)}")


def load_spm(path: Path, setting: str) -> spm.SentencePieceProcessor:
    """Load one SentencePiece model, or say which setting points at a bad file."""
    try:
        return spm.SentencePieceProcessor(model_file=str(path))
    except (OSError, RuntimeError) as exc:
        raise ModelError(f"{setting}: {path} is not a SentencePiece model ({exc})") from exc


def served_pairs(settings: MtSettings) -> list[str]:
    """The configured pairs; each language needs a token if any has one."""
    pairs = sorted(set(settings.pairs))
    if not pairs:
        raise ModelError(
            "MT_PAIRS is required with MT_ENGINE=ctranslate2 (the model directory does not "
            'say which languages it translates), e.g. MT_PAIRS=["en-pt"]'
        )
    tokens = settings.language_tokens
    if len(pairs) > 1 and not tokens:
        raise ModelError(
            f"MT_PAIRS={pairs}: a model without MT_LANGUAGE_TOKENS translates one direction; "
            "serve one pair, or set MT_LANGUAGE_TOKENS for a many-to-many model (NLLB)"
        )
    missing = sorted({lang for p in pairs for lang in p.split("-")} - set(tokens))
    if tokens and missing:
        raise ModelError(f"MT_LANGUAGE_TOKENS has no token for {missing} (MT_PAIRS={pairs})")
    return pairs


def read_config(directory: Path) -> dict[str, Any]:
    """The model's ``config.json`` (CTranslate2 2.x models have none: defaults then)."""
    path = directory / "config.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def vocabulary(directory: Path, side: str) -> set[str] | None:
    """The tokens one side of the model knows, or None if no vocabulary file is found."""
    for name in (f"{side}_vocabulary", "shared_vocabulary"):
        if (directory / f"{name}.json").is_file():
            return set(json.loads((directory / f"{name}.json").read_text(encoding="utf-8")))
        if (directory / f"{name}.txt").is_file():
            return set((directory / f"{name}.txt").read_text(encoding="utf-8").splitlines())
    return None


def check_language_tokens(directory: Path, settings: MtSettings, pairs: list[str]) -> None:
    """Refuse a language token the model does not know: it would decode as <unk> garbage."""
    tokens = settings.language_tokens
    for side, index in (("source", 0), ("target", 1)):
        known = vocabulary(directory, side)
        unknown = {tokens[p.split("-")[index]] for p in pairs if tokens} - (known or set())
        if known is not None and unknown:
            raise ModelError(f"MT_LANGUAGE_TOKENS: {sorted(unknown)} not in the {side} vocabulary")


def open_translator(directory: Path, settings: MtSettings) -> ctranslate2.Translator:
    """Load the weights on the CPU with the configured compute type and threads."""
    try:
        return ctranslate2.Translator(
            str(directory),
            device="cpu",
            compute_type=settings.compute_type,
            intra_threads=settings.cpu_threads,
        )
    except (RuntimeError, ValueError) as exc:
        raise ModelError(
            f"MT_MODEL_DIR={str(directory)!r}: CTranslate2 cannot load it: {exc}"
        ) from exc


def load_ct2(settings: MtSettings) -> Ct2Engine:
    """Check every file and setting, load the model, and translate a word per pair."""
    directory = model_dir(settings)
    pairs = served_pairs(settings)
    source_path = spm_path(directory, settings.source_spm, SOURCE_SPM_NAMES, "MT_SOURCE_SPM")
    target_names = (*TARGET_SPM_NAMES, str(source_path))
    target_path = spm_path(directory, settings.target_spm, target_names, "MT_TARGET_SPM")
    check_language_tokens(directory, settings, pairs)
    config = read_config(directory)
    engine = Ct2Engine(
        translator=open_translator(directory, settings),
        source_spm=load_spm(source_path, "MT_SOURCE_SPM"),
        target_spm=load_spm(target_path, "MT_TARGET_SPM"),
        pairs=pairs,
        label=directory.resolve().name,
        settings=settings,
        source_end=[] if config.get("add_source_eos") else [config.get("eos_token", "</s>")],
    )
    for pair in pairs:
        engine.translate("Hello.", pair)  # the first call's one-off costs, before "ready"
    return engine

"""The CTranslate2 MT engine on tiny models built here, without torch or downloads.

Each model is a randomly initialised one-layer Transformer (``TransformerSpec``, numpy
weights) whose vocabularies come from SentencePiece models trained on a few dozen lines.
Its output is gibberish, so these tests check the plumbing (file discovery, tokenising,
one batch per job, results in input order, language tokens, the worker on a real Redis,
clear load errors), not translation quality. The decoder is biased never to emit ``</s>``,
``<unk>`` or a language token, so every output is a non-empty run of real pieces.
"""

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as aioredis
import sentencepiece as spm
from ctranslate2.specs import TransformerSpec
from prometheus_client import CollectorRegistry

from services.mt.__main__ import loops
from services.mt.ct2 import Ct2Engine
from services.mt.handler import handle
from services.mt.model import ModelError, MtModel, load_model
from services.mt.settings import MtSettings
from shared import bus, streams
from shared.messages import Envelope, TranslateRequest, Translation, unpack
from shared.metrics import worker_metrics
from shared.multi import run_many

pytestmark = pytest.mark.redis

ROOT = Path(__file__).parents[2]
SUBJECTS = ("the red table", "a small book", "my old cat", "the new car", "our quiet window")
PLACES = ("on the floor", "near the road", "under the shelf", "behind the hill")
ASSUNTOS = ("a mesa vermelha", "um livro pequeno", "o meu gato", "o carro novo", "a janela")
LUGARES = ("no chão", "perto da estrada", "debaixo da prateleira", "atrás do morro")
ENGLISH = [f"{s.capitalize()} is {p}." for s in SUBJECTS for p in PLACES]
PORTUGUESE = [f"{s.capitalize()} está {p}." for s in ASSUNTOS for p in LUGARES]
NLLB_TOKENS = {"en": "eng_Latn", "pt": "por_Latn"}
D_MODEL, D_FFN = 32, 64


def train_spm(lines: list[str], prefix: Path) -> spm.SentencePieceProcessor:
    """A small SentencePiece model (``<prefix>.model``) with <unk> <s> </s> as ids 0-2."""
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_prefix=str(prefix),
        vocab_size=64,
        hard_vocab_limit=False,
        character_coverage=1.0,
        minloglevel=2,
    )
    return spm.SentencePieceProcessor(model_file=f"{prefix}.model")


def pieces(model: spm.SentencePieceProcessor) -> list[str]:
    return [model.id_to_piece(i) for i in range(model.get_piece_size())]


@dataclass
class Weights:
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))

    def linear(self, spec: object, rows: int, cols: int = D_MODEL) -> None:
        spec.weight = self.rng.normal(0, 1.0, (rows, cols)).astype(np.float32)  # type: ignore[attr-defined]
        spec.bias = np.zeros(rows, np.float32)  # type: ignore[attr-defined]

    def norm(self, spec: object) -> None:
        spec.gamma = np.ones(D_MODEL, np.float32)  # type: ignore[attr-defined]
        spec.beta = np.zeros(D_MODEL, np.float32)  # type: ignore[attr-defined]

    def block(self, layer: object) -> None:
        """Self-attention (fused QKV), cross-attention if there is one, feed-forward."""
        attention = layer.self_attention  # type: ignore[attr-defined]
        self.norm(attention.layer_norm)
        self.linear(attention.linear[0], 3 * D_MODEL)
        self.linear(attention.linear[1], D_MODEL)
        cross = getattr(layer, "attention", None)
        if cross is not None:
            self.norm(cross.layer_norm)
            self.linear(cross.linear[0], D_MODEL)
            self.linear(cross.linear[1], 2 * D_MODEL)
            self.linear(cross.linear[2], D_MODEL)
        self.norm(layer.ffn.layer_norm)  # type: ignore[attr-defined]
        self.linear(layer.ffn.linear_0, D_FFN)  # type: ignore[attr-defined]
        self.linear(layer.ffn.linear_1, D_MODEL, D_FFN)  # type: ignore[attr-defined]


def random_transformer(source: list[str], target: list[str], silenced: set[str]) -> TransformerSpec:
    """A one-layer Transformer with random weights that never emits a ``silenced`` token."""
    spec = TransformerSpec.from_config(num_layers=1, num_heads=2)
    weights = Weights()
    spec.encoder.embeddings[0].weight = weights.rng.normal(0, 1, (len(source), D_MODEL)).astype(
        np.float32
    )
    spec.decoder.embeddings.weight = weights.rng.normal(0, 1, (len(target), D_MODEL)).astype(
        np.float32
    )
    weights.norm(spec.encoder.layer_norm)
    weights.norm(spec.decoder.layer_norm)
    weights.linear(spec.decoder.projection, len(target))
    for i, token in enumerate(target):
        if token in silenced:
            spec.decoder.projection.bias[i] = -1e4
    for layer in [*spec.encoder.layer, *spec.decoder.layer]:
        weights.block(layer)
    spec.register_source_vocabulary(source)
    spec.register_target_vocabulary(target)
    return spec


def save(spec: TransformerSpec, directory: Path) -> Path:
    """What ``ct2-*-converter`` does last: check, fix the weight types, write the directory."""
    spec.validate()
    spec.optimize(quantization="float32")
    spec.save(str(directory))
    return directory


@pytest.fixture(scope="module")
def opus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An OPUS-MT-shaped model: its own source.spm and target.spm, separate vocabularies."""
    directory = tmp_path_factory.mktemp("opus-mt-en-pt")
    work = tmp_path_factory.mktemp("spm")
    source = train_spm(ENGLISH, work / "source")
    target = train_spm(PORTUGUESE, work / "target")
    shutil.copy(work / "source.model", directory / "source.spm")
    shutil.copy(work / "target.model", directory / "target.spm")
    spec = random_transformer(pieces(source), pieces(target), {"</s>", "<unk>"})
    return save(spec, directory)


@pytest.fixture(scope="module")
def nllb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An NLLB-shaped model: one shared sentencepiece.bpe.model plus language tokens."""
    directory = tmp_path_factory.mktemp("nllb-tiny")
    shared = train_spm(ENGLISH + PORTUGUESE, directory / "sentencepiece.bpe")
    vocabulary = pieces(shared) + list(NLLB_TOKENS.values())
    spec = random_transformer(vocabulary, vocabulary, {"</s>", "<unk>", *NLLB_TOKENS.values()})
    return save(spec, directory)


def ct2_settings(directory: Path, **overrides: object) -> MtSettings:
    base: dict[str, object] = dict(engine="ctranslate2", model_dir=str(directory), pairs=["en-pt"])
    return MtSettings(**{**base, **overrides})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def opus(opus_dir: Path) -> MtModel:
    return load_model(ct2_settings(opus_dir))


@dataclass
class Recorder:
    """The real engine, with a record of every batch call the handler makes."""

    engine: MtModel
    calls: list[tuple[list[str], list[str]]] = field(default_factory=list)

    @property
    def pairs(self) -> list[str]:
        return self.engine.pairs

    def name(self, pair: str) -> str:
        return self.engine.name(pair)

    def translate(self, text: str, pair: str) -> str:
        raise AssertionError("the handler translates a job's sentences in one batch")

    def translate_batch(self, texts: Sequence[str], pair: str) -> list[str]:
        outputs = self.engine.translate_batch(texts, pair)
        self.calls.append((list(texts), outputs))
        return outputs


def test_loads_a_ctranslate2_directory(opus: MtModel, opus_dir: Path) -> None:
    assert isinstance(opus, Ct2Engine)
    assert opus.pairs == ["en-pt"]
    assert opus.name("en-pt") == f"ctranslate2:{opus_dir.name}:en-pt"
    text = opus.translate("The red table is on the floor.", "en-pt")
    assert isinstance(text, str) and text.strip(), repr(text)


def test_handler_sends_a_jobs_sentences_as_one_batch(opus: MtModel, opus_dir: Path) -> None:
    first, second, third = ENGLISH[0], ENGLISH[5], ENGLISH[10]
    recorder = Recorder(opus)
    request = TranslateRequest(
        text=f"{first} {second} {first}\n\n{third}", source="en", target="pt"
    )
    [result] = handle(recorder, ct2_settings(opus_dir), Envelope(payload=request))  # type: ignore[arg-type]
    [(inputs, outputs)] = recorder.calls  # one call for the whole job
    assert inputs == [first, second, first, third]
    assert all(isinstance(o, str) and o.strip() for o in outputs), outputs
    # In input order: the same sentence twice gives the same output; batched equals alone.
    assert outputs[0] == outputs[2] != outputs[1]
    assert outputs == [opus.translate(s, "en-pt") for s in inputs]
    assert result.text == f"{outputs[0]} {outputs[1]} {outputs[2]}\n\n{outputs[3]}"
    assert result.model == opus.name("en-pt") and result.processing_s > 0


def test_language_tokens_drive_a_many_to_many_model(nllb_dir: Path) -> None:
    model = load_model(
        ct2_settings(nllb_dir, pairs=["en-pt", "pt-en"], language_tokens=NLLB_TOKENS)
    )
    assert model.pairs == ["en-pt", "pt-en"]
    sentences = [ENGLISH[0], PORTUGUESE[3]]
    there, back = (
        model.translate_batch(sentences, "en-pt"),
        model.translate_batch(sentences, "pt-en"),
    )
    assert all(t.strip() for t in there + back), (there, back)
    assert there != back  # the pair's tokens reach the model
    # The forced target token is cut off, not decoded (as ' ⁇ ': it is no SentencePiece piece).
    assert not any("⁇" in t or "Latn" in t for t in there + back), (there, back)


async def test_worker_serves_the_pair_on_the_bus(
    opus: MtModel, opus_dir: Path, aredis: aioredis.Redis, clean_redis: str
) -> None:
    settings = ct2_settings(opus_dir, redis_url=clean_redis, worker_name="mt-ct2", block_ms=50)
    stream, replies = streams.jobs("mt", "en-pt"), streams.replies("test-ct2")
    await bus.ensure_group(aredis, stream, streams.group("mt"))
    request = TranslateRequest(text=f"{ENGLISH[1]} {ENGLISH[2]}", source="en", target="pt")
    job = Envelope(payload=request, reply_to=replies)
    await bus.submit(aredis, stream, job)
    await run_many(aredis, loops(opus, settings), worker_metrics(CollectorRegistry()), burst=True)
    [reply] = [unpack(fields[b"e"]) for _id, fields in await aredis.xrange(replies)]
    assert reply.parent == job.id and isinstance(reply.payload, Translation), reply
    assert reply.payload.text.strip() and reply.payload.model == opus.name("en-pt")
    assert (reply.payload.source, reply.payload.target) == ("en", "pt")
    assert (await aredis.xpending(stream, streams.group("mt")))["pending"] == 0


def without_spm(opus_dir: Path, target: Path) -> Path:
    """A copy of the model directory without its SentencePiece files."""
    shutil.copytree(opus_dir, target, ignore=shutil.ignore_patterns("*.spm"))
    return target


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(model_dir=""), "MT_MODEL_DIR is required"),
        (dict(model_dir="/nonexistent/opus-mt"), "not a CTranslate2 model directory"),
        (dict(source_spm="missing.spm"), "MT_SOURCE_SPM='missing.spm': no such file"),
        (dict(target_spm="config.json"), "MT_TARGET_SPM: .* is not a SentencePiece model"),
        (dict(pairs=[]), "MT_PAIRS is required"),
        (dict(pairs=["en-pt", "pt-en"]), "translates one direction"),
        (dict(language_tokens={"en": "eng_Latn"}), r"no token for \['pt'\]"),
        (dict(language_tokens=NLLB_TOKENS), "not in the source vocabulary"),
        (dict(compute_type="int3"), "CTranslate2 cannot load it"),
    ],
)
def test_bad_configuration_is_a_clear_load_error(
    opus_dir: Path, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ModelError, match=message):
        load_model(ct2_settings(opus_dir, **overrides))


def test_missing_spm_files_are_named(opus_dir: Path, tmp_path: Path) -> None:
    bare = without_spm(opus_dir, tmp_path / "bare")
    with pytest.raises(ModelError, match=r"MT_SOURCE_SPM is not set and .* holds none of"):
        load_model(ct2_settings(bare))


def test_worker_refuses_to_start_with_a_message(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MT_")}
    env |= {
        "MT_ENGINE": "ctranslate2",
        "MT_MODEL_DIR": str(tmp_path / "absent"),
        "MT_PAIRS": '["en-pt"]',
    }
    done = subprocess.run(
        [sys.executable, "-m", "services.mt"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done
    assert "mt: cannot load the model: MT_MODEL_DIR=" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr

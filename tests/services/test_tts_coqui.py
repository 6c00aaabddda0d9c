"""The Coqui engine on a randomly initialised tiny VITS saved to a temporary folder.

Plumbing only: no Coqui voice ships in a package, so the model here speaks noise. These
tests show that a local ``config.json`` + ``model.pth`` loads through our engine, streams
one chunk per sentence lazily, and honours speed, and that bad folders fail clearly. They
are skipped, with the reason, only where the optional ``TTS`` package (coqui-tts) cannot
be imported.
"""

from pathlib import Path
from typing import Any

import numpy as np
import pytest

try:
    import torch
    from TTS.tts.configs.vits_config import VitsArgs, VitsConfig
    from TTS.tts.models.vits import Vits

    from services.tts.coqui_engine import CoquiEngine, CoquiError, load_coqui
# coqui-tts is optional; OSError: a torchaudio built for CUDA beside a CPU-only torch.
except (ImportError, OSError) as exc:
    reason = next((line for line in str(exc).splitlines() if line.strip()), repr(exc))
    pytest.skip(f"the Coqui engine needs the TTS package: {reason}", allow_module_level=True)

from services.tts.handler import handle, synthesize
from services.tts.model import load_models
from services.tts.settings import TtsSettings
from shared.messages import Envelope, SpeechChunk, SynthesizeRequest
from shared.worker import JobFailed

RATE_HZ = 16_000


def save_tiny_vits(folder: Path) -> None:
    """A VITS with a few hundred thousand random weights, saved as Coqui saves a model."""
    args = VitsArgs(
        hidden_channels=16,
        hidden_channels_ffn_text_encoder=32,
        num_layers_text_encoder=1,
        num_layers_posterior_encoder=1,
        num_layers_flow=1,
        use_sdp=False,  # a deterministic duration predictor: speed is measurable
        init_discriminator=False,  # only needed for training
        resblock_kernel_sizes_decoder=[3],
        resblock_dilation_sizes_decoder=[[1, 3, 5]],
        upsample_rates_decoder=[8, 8, 4],  # their product is the hop length, 256
        upsample_initial_channel_decoder=32,
        upsample_kernel_sizes_decoder=[16, 16, 8],
    )
    config = VitsConfig(model_args=args, use_phonemes=False, text_cleaner="basic_cleaners")
    config.audio.sample_rate = RATE_HZ
    torch.manual_seed(0)
    model = Vits(config)
    folder.mkdir(parents=True)
    config.save_json(str(folder / "config.json"))
    torch.save({"model": model.state_dict()}, folder / "model.pth")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("coqui") / "tiny-vits"
    save_tiny_vits(folder)
    return folder


@pytest.fixture(scope="module")
def settings(model_dir: Path) -> TtsSettings:
    return TtsSettings(engine="coqui", coqui_model_dir=str(model_dir), cpu_threads=1)


@pytest.fixture(scope="module")
def tiny(settings: TtsSettings) -> CoquiEngine:
    (engine,) = load_models(settings)
    assert isinstance(engine, CoquiEngine)
    return engine


def speak(engine: CoquiEngine, settings: TtsSettings, text: str, **kw: Any) -> list[SpeechChunk]:
    request = SynthesizeRequest(text=text, **kw)
    return list(handle(engine, settings, Envelope(payload=request)))


def test_a_local_model_folder_loads_with_its_metadata(tiny: CoquiEngine) -> None:
    assert (tiny.name, tiny.engine, tiny.languages) == ("coqui-tiny-vits", "coqui", ["en"])
    assert tiny.sample_rate_hz == RATE_HZ  # the config's rate, not a default


def test_one_chunk_per_sentence_of_audio(tiny: CoquiEngine, settings: TtsSettings) -> None:
    chunks = speak(tiny, settings, "Good morning. The weather is fine today.")
    assert [(c.index, c.last, c.voice) for c in chunks] == [
        (0, False, "coqui-tiny-vits"),
        (1, True, "coqui-tiny-vits"),
    ]
    for chunk in chunks:
        assert chunk.audio_format.sample_rate_hz == RATE_HZ and len(chunk.audio) % 2 == 0
        assert np.abs(np.frombuffer(chunk.audio, dtype="<i2")).max() > 0  # not all silence


def test_first_sentence_comes_before_the_next_is_synthesised(
    tiny: CoquiEngine, settings: TtsSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    spoken: list[str] = []
    real_tts = tiny.synthesizer.tts

    def recording_tts(text: str, **kw: Any) -> Any:
        spoken.append(text)  # the real model still speaks it
        return real_tts(text, **kw)

    monkeypatch.setattr(tiny.synthesizer, "tts", recording_tts)
    chunks = synthesize(tiny, settings, SynthesizeRequest(text="One. Two. Three."))
    assert next(chunks).index == 0 and spoken == ["One."]
    assert [c.last for c in chunks] == [False, True] and spoken == ["One.", "Two.", "Three."]


def test_slower_speed_lengthens_the_speech(tiny: CoquiEngine, settings: TtsSettings) -> None:
    text = "Speed changes how long this sentence takes."
    normal = speak(tiny, settings, text)[0].audio
    slow = speak(tiny, settings, text, speed=0.5)[0].audio
    assert len(slow) > 1.3 * len(normal)  # VITS durations scale with 1 / speed
    assert tiny.synthesizer.tts_model.length_scale == pytest.approx(2 * tiny.length_scale)


def test_a_wrong_language_is_refused(tiny: CoquiEngine, settings: TtsSettings) -> None:
    with pytest.raises(JobFailed) as failed:
        speak(tiny, settings, "Olá.", language="pt")
    assert failed.value.code == "unsupported_language"


def test_no_model_folder_is_a_clear_load_error() -> None:
    with pytest.raises(CoquiError, match="needs TTS_COQUI_MODEL_DIR"):
        load_coqui(TtsSettings(engine="coqui"))


def test_a_folder_without_the_checkpoint_is_a_clear_load_error(
    model_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "config.json").write_bytes((model_dir / "config.json").read_bytes())
    with pytest.raises(CoquiError, match="lacks model.pth"):
        load_coqui(TtsSettings(engine="coqui", coqui_model_dir=str(tmp_path)))


def test_the_served_name_and_language_can_be_set(model_dir: Path) -> None:
    settings = TtsSettings(
        engine="coqui", coqui_model_dir=str(model_dir), voice_name="ana", coqui_language="PT"
    )
    engine = load_coqui(settings)
    assert (engine.name, engine.languages) == ("ana", ["pt"])

"""Turning one speaker job into speaker turns and voiceprints. No Redis, no environment."""

import time
from collections.abc import Iterator

import numpy as np

from services.speaker import diarize, encoder, vad
from services.speaker.model import SpeakerModel
from services.speaker.settings import SpeakerSettings
from shared.audio import to_float32_mono
from shared.messages import Envelope, SpeakerRequest, SpeakerResult, SpeakerTurn, Voiceprint
from shared.worker import Rejected

MIN_AUDIO_S = 0.05
SPEAKER_RATE_HZ = encoder.RATE_HZ
GAP_S = 0.1  # silence between speech regions joined for one voiceprint


def _check(settings: SpeakerSettings, request: SpeakerRequest) -> None:
    fmt = request.audio_format
    if fmt.sample_rate_hz != SPEAKER_RATE_HZ:
        raise Rejected(
            "unsupported_audio", f"expected {SPEAKER_RATE_HZ} Hz, got {fmt.sample_rate_hz}"
        )
    duration_s = fmt.duration_s(request.audio)
    if duration_s < MIN_AUDIO_S:
        raise Rejected("empty_audio", f"audio shorter than {MIN_AUDIO_S} s")
    if duration_s > settings.max_audio_s:
        raise Rejected(
            "audio_too_long", f"{duration_s:.0f} s of audio exceeds {settings.max_audio_s:.0f} s"
        )


def _label(index: int) -> str:
    return f"S{index + 1}"


def _unit(vector: np.ndarray) -> list[float]:
    return (vector / np.linalg.norm(vector)).astype(np.float32).tolist()


def _speech(
    model: SpeakerModel, settings: SpeakerSettings, wav: np.ndarray
) -> list[tuple[float, float]]:
    options = vad.VadOptions(threshold=settings.vad_threshold)
    return vad.regions(vad.probabilities(model.vad, wav), options)


def _embed(model: SpeakerModel, wav: np.ndarray, regions: list[tuple[float, float]]) -> np.ndarray:
    """One embedding of all the speech: the regions joined by short gaps."""
    gap = np.zeros(int(GAP_S * SPEAKER_RATE_HZ), dtype=np.float32)
    pieces = [wav[int(a * SPEAKER_RATE_HZ) : int(b * SPEAKER_RATE_HZ)] for a, b in regions]
    joined = np.concatenate([p for piece in pieces for p in (piece, gap)][:-1])
    return encoder.embed_utterance(model.encoder, encoder.normalize_volume(joined))


def _diarize(
    model: SpeakerModel,
    settings: SpeakerSettings,
    request: SpeakerRequest,
    wav: np.ndarray,
    regions: list[tuple[float, float]],
) -> tuple[list[SpeakerTurn], list[Voiceprint]]:
    options = diarize.DiarizeOptions(
        window_s=settings.window_s,
        step_s=settings.step_s,
        same_speaker_cosine=settings.same_speaker_cosine,
        max_speakers=settings.max_speakers,
        num_speakers=request.num_speakers,
    )
    spans = diarize.windows(regions, options)
    if not spans:  # only short bursts of speech: one speaker, by assumption
        spans = regions
    embeddings = np.stack([_embed(model, wav, [span]) for span in spans])
    labels = diarize.cluster(embeddings, options)
    frames = diarize.label_frames(regions, spans, labels, len(wav) / SPEAKER_RATE_HZ)
    turns = [
        SpeakerTurn(start_s=t.start_s, end_s=t.end_s, speaker=_label(t.speaker))
        for t in diarize.turns(frames)
    ]
    prints = [
        Voiceprint(
            speaker=_label(k),
            embedding=_unit(embeddings[labels == k].mean(axis=0)),
            speech_s=round(float((frames == k).sum()) * diarize.FRAME_S, 2),
        )
        for k in range(int(labels.max()) + 1)
    ]
    return turns, prints


def analyse(
    model: SpeakerModel, settings: SpeakerSettings, request: SpeakerRequest
) -> SpeakerResult:
    """Diarize or embed one request's audio with the loaded models."""
    _check(settings, request)
    started = time.perf_counter()
    wav = to_float32_mono(request.audio, request.audio_format)
    regions = _speech(model, settings, wav)
    speech_s = round(sum(b - a for a, b in regions), 2)
    if speech_s < max(request.min_speech_s, 1e-9):
        found = "no speech" if not regions else f"only {speech_s:.1f} s of speech"
        raise Rejected(
            "insufficient_speech",
            f"{found} in {len(wav) / SPEAKER_RATE_HZ:.1f} s of audio; "
            f"at least {request.min_speech_s:.1f} s of speech is needed",
        )
    if request.task == "embed":
        turns = [
            SpeakerTurn(start_s=round(a, 2), end_s=round(b, 2), speaker="S1") for a, b in regions
        ]
        prints = [
            Voiceprint(
                speaker="S1", embedding=_unit(_embed(model, wav, regions)), speech_s=speech_s
            )
        ]
    else:
        turns, prints = _diarize(model, settings, request, wav, regions)
    return SpeakerResult(
        task=request.task,
        turns=turns,
        speakers=prints,
        duration_s=round(len(wav) / SPEAKER_RATE_HZ, 3),
        speech_s=speech_s,
        model=model.name,
        processing_s=time.perf_counter() - started,
    )


def handle(
    model: SpeakerModel, settings: SpeakerSettings, job: Envelope
) -> Iterator[SpeakerResult]:
    """The worker-loop handler: one result per job."""
    if not isinstance(job.payload, SpeakerRequest):
        raise Rejected("wrong_kind", f"speaker cannot handle {job.kind!r}")
    yield analyse(model, settings, job.payload)

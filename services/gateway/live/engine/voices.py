"""Who is speaking in a live session: each final utterance's voiceprint (the speaker stage,
run beside its STT job so it adds little to the final's latency) labelled S1, S2, ... within
the session, and matched against the people the session's owner enrolled.

A voice is the nearest session voice whose running centroid is alike enough, else a new one.
The voices are kept in Redis with the session (``keys.session_voices``), so a presenter
who reconnects, to this gateway or another, keeps the same labels. A recognised person is
announced with a ``person`` event once per turn: when they start speaking
after someone else (or first).
"""

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from services.gateway import keys
from services.gateway.core import Core
from services.gateway.errors import GatewayError
from services.gateway.stages import speaker as speakers
from shared import bus
from shared.messages import SpeakerResult

log = logging.getLogger(__name__)
MIN_SPEECH_S = 0.8  # a shorter utterance's voiceprint is too unreliable to label
SAME_VOICE_COSINE = 0.75  # an utterance this close to a session voice's centroid is that voice


@dataclass(frozen=True)
class Heard:
    """A final utterance's speaker: the session label and the enrolled person, if any."""

    label: str
    person: speakers.Person | None
    similarity: float


@dataclass
class _Voice:
    label: str
    total: np.ndarray
    person_id: str | None = None


@dataclass
class Voices:
    """One live session's speakers (not shared between sessions)."""

    core: Core
    owner: str
    session_id: str
    voices: list[_Voice] = field(default_factory=list)
    last_label: str | None = None

    async def load(self) -> None:
        """The session's voices so far (a resumed session keeps its labels)."""
        try:
            raw = await self.core.redis.hgetall(keys.session_voices(self.session_id))
        except bus.TRANSIENT as exc:
            log.warning("session %s: voices not loaded: %s", self.session_id, exc)
            return
        for label, value in sorted(raw.items(), key=lambda kv: int(kv[0].decode()[1:])):
            saved = json.loads(value)
            total = np.asarray(saved["total"], dtype=np.float32)
            self.voices.append(_Voice(label.decode(), total, saved.get("person_id")))

    async def save(self, label: str) -> None:
        """Store one voice's running voiceprint (its TTL is the session's, set on append)."""
        voice = next(v for v in self.voices if v.label == label)
        value = json.dumps({"total": voice.total.tolist(), "person_id": voice.person_id})
        try:
            await self.core.redis.hset(keys.session_voices(self.session_id), label, value)
        except bus.TRANSIENT as exc:
            log.warning("session %s: voice %s not saved: %s", self.session_id, label, exc)

    async def embed(self, pcm16: bytes) -> tuple[SpeakerResult, list[speakers.Person]] | None:
        """The utterance's voiceprint and the owner's people; None without a speaker worker
        or enough speech (the final then carries no speaker)."""
        try:
            result = await speakers.analyse(self.core, pcm16, "embed", min_speech_s=MIN_SPEECH_S)
            return result, await speakers.people(self.core, self.owner)
        except GatewayError as exc:
            if exc.code not in ("no_worker", "insufficient_speech"):
                log.info("speaker of a final not found: %s", exc.message)
            return None

    def label(self, found: tuple[SpeakerResult, list[speakers.Person]] | None) -> Heard | None:
        """Assign the utterance to a session voice (in utterance order)."""
        if found is None:
            return None
        result, people = found
        print_ = result.speakers[0]
        (match,) = speakers.match([print_], people, self.core.settings.speaker_match_cosine)
        embedding = np.asarray(print_.embedding, dtype=np.float32)
        voice = self._voice(embedding, match.person)
        voice.total += embedding
        return Heard(voice.label, match.person, match.similarity)

    def _voice(self, embedding: np.ndarray, person: speakers.Person | None) -> _Voice:
        if person is not None:
            for voice in self.voices:
                if voice.person_id == person.person_id:
                    return voice
        best, score = None, SAME_VOICE_COSINE
        for voice in self.voices:
            if person is not None and voice.person_id not in (None, person.person_id):
                continue
            centroid = voice.total / np.linalg.norm(voice.total)
            if (similarity := float(centroid @ embedding)) >= score:
                best, score = voice, similarity
        if best is None:
            best = _Voice(f"S{len(self.voices) + 1}", np.zeros_like(embedding))
            self.voices.append(best)
        if person is not None:
            best.person_id = person.person_id
        return best

    def person_event(self, heard: Heard, utterance: int) -> dict[str, Any] | None:
        """A ``person`` event when a recognised person's turn starts, else None."""
        starts_turn = heard.label != self.last_label
        self.last_label = heard.label
        if heard.person is None or not starts_turn:
            return None
        return speakers.person_event(
            heard.person, heard.similarity, heard.label, utterance=utterance
        )


def fields(heard: Heard | None) -> dict[str, Any]:
    """What a ``stt_final`` event says of its speaker."""
    if heard is None:
        return {"speaker": None, "person": None}
    person = None
    if heard.person is not None:
        person = {"person_id": heard.person.person_id, "name": heard.person.name}
    return {"speaker": heard.label, "person": person}

"""Speakers through the bus: diarization and voiceprints from the speaker stage, and the
people an API-key identity enrolled, kept in Redis.

A person is one field of the owner's hash (``keys.voiceprints``): name, description,
relationship and the voiceprint (a unit-length GE2E embedding), never the audio. Only the
identity that enrolled someone can list, match or delete them, as with the assistant's memory.
Recognition is a cosine match: the most similar enrolled voiceprint, if at least
``GATEWAY_SPEAKER_MATCH_COSINE``; below it the voice is unknown, never a guess.
"""

import json
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from services.gateway import keys
from services.gateway.core import Core, call
from services.gateway.errors import GatewayError, guarded
from services.gateway.stages.workers import live_workers
from shared.messages import SpeakerRequest, SpeakerResult, Transcript, Voiceprint


@dataclass(frozen=True)
class Person:
    person_id: str
    name: str
    description: str
    relationship: str
    created_s: float
    speech_s: float
    embedding: list[float]

    def public(self) -> dict[str, object]:
        """What a client sees: the person, and when and from how much speech it was enrolled."""
        return {
            "person_id": self.person_id,
            "name": self.name,
            "description": self.description,
            "relationship": self.relationship,
            "created": round(self.created_s, 3),
            "speech_s": self.speech_s,
        }


@dataclass(frozen=True)
class Match:
    speaker: str
    person: Person | None
    similarity: float  # to the closest enrolled voiceprint (0 when nobody is enrolled)


async def analyse(
    core: Core, pcm16: bytes, task: str, num_speakers: int | None = None, min_speech_s: float = 0
) -> SpeakerResult:
    """Diarize or embed 16 kHz mono PCM on a speaker worker."""
    live = await live_workers(core, "speaker", "speaker")
    worker = min(live, key=lambda w: (w.in_flight, w.name))
    payload = SpeakerRequest(
        audio=pcm16,
        task=task,  # type: ignore[arg-type]
        num_speakers=num_speakers,
        min_speech_s=min_speech_s,
    )
    result = await call(core, worker.stream, payload, "speaker")
    if not isinstance(result, SpeakerResult):
        raise GatewayError(502, f"speaker answered with {getattr(result, 'kind', '?')!r}")
    return result


async def enrol(core: Core, owner: str, fields: dict[str, str], print_: Voiceprint) -> Person:
    """Store a new person under ``owner``; 409 past the per-owner limit."""
    key = keys.voiceprints(owner)
    if await guarded(core.redis.hlen(key)) >= core.settings.speaker_max_people:
        raise GatewayError(
            409, f"at most {core.settings.speaker_max_people} people per key", "too_many_people"
        )
    person = Person(
        person_id=f"person_{uuid.uuid4().hex[:12]}",
        created_s=time.time(),
        speech_s=print_.speech_s,
        embedding=print_.embedding,
        **fields,
    )
    await guarded(core.redis.hset(key, person.person_id, json.dumps(asdict(person))))
    return person


async def people(core: Core, owner: str) -> list[Person]:
    """Everyone ``owner`` enrolled, oldest first."""
    raw = await guarded(core.redis.hgetall(keys.voiceprints(owner)))
    found = [Person(**json.loads(v)) for v in raw.values()]
    return sorted(found, key=lambda p: (p.created_s, p.person_id))


async def forget(core: Core, owner: str, person_id: str) -> bool:
    """Delete one of ``owner``'s people; False if ``owner`` has nobody by that id."""
    return bool(await guarded(core.redis.hdel(keys.voiceprints(owner), person_id)))


def person_event(person: Person, similarity: float, speaker: str, **where: Any) -> dict[str, Any]:
    """Seed 004's ``person`` event: who started speaking, how sure, and ``where`` (the
    utterance of a live session, the start of an upload's segment)."""
    return {
        "type": "person",
        "name": person.name,
        "description": person.description,
        "relationship": person.relationship,
        "person_id": person.person_id,
        "similarity": round(similarity, 3),
        "speaker": speaker,
        **where,
    }


def match(prints: list[Voiceprint], enrolled: list[Person], threshold: float) -> list[Match]:
    """Each voiceprint's closest enrolled person, or None below ``threshold``."""
    if not enrolled:
        return [Match(p.speaker, None, 0.0) for p in prints]
    table = np.asarray([p.embedding for p in enrolled], dtype=np.float32)
    out = []
    for print_ in prints:
        scores = table @ np.asarray(print_.embedding, dtype=np.float32)
        best = int(scores.argmax())
        score = float(scores[best])
        out.append(Match(print_.speaker, enrolled[best] if score >= threshold else None, score))
    return out


def speaker_at(result: SpeakerResult, start_s: float, end_s: float) -> str | None:
    """The speaker talking most within [start_s, end_s] (None if nobody does)."""
    overlap: dict[str, float] = {}
    for turn in result.turns:
        shared = min(end_s, turn.end_s) - max(start_s, turn.start_s)
        if shared > 0:
            overlap[turn.speaker] = overlap.get(turn.speaker, 0.0) + shared
    if not overlap:  # between turns (a pause): the nearest turn's speaker
        middle = (start_s + end_s) / 2
        nearest = min(
            result.turns,
            key=lambda t: min(abs(middle - t.start_s), abs(middle - t.end_s)),
            default=None,
        )
        return nearest.speaker if nearest else None
    return max(overlap, key=overlap.__getitem__)


def label_transcript(transcript: Transcript, result: SpeakerResult) -> list[str | None]:
    """The speaker of each transcript segment."""
    return [speaker_at(result, s.start_s, s.end_s) for s in transcript.segments]


def label_words(transcript: Transcript, result: SpeakerResult) -> list[str | None]:
    """The speaker of each word of the transcript, in order."""
    return [speaker_at(result, w.start_s, w.end_s) for s in transcript.segments for w in s.words]

"""Rendering a transcript in the OpenAI response formats (json, text, srt, vtt, verbose_json)."""

from typing import Any

from shared.messages import Segment, Transcript


def _clock(seconds: float, decimal: str) -> str:
    millis = round(max(seconds, 0.0) * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


Speakers = list[str | None] | None  # each segment's speaker label, when diarized


def _who(speakers: Speakers, index: int) -> str | None:
    return speakers[index] if speakers and index < len(speakers) else None


def srt(segments: list[Segment], speakers: Speakers = None) -> str:
    """SubRip subtitles, one cue per segment ("S1: ..." when diarized)."""
    cues = []
    for i, s in enumerate(segments):
        who = _who(speakers, i)
        text = f"{who}: {s.text}" if who else s.text
        cues.append(f"{i + 1}\n{_clock(s.start_s, ',')} --> {_clock(s.end_s, ',')}\n{text}\n")
    return "\n".join(cues)


def vtt(segments: list[Segment], speakers: Speakers = None) -> str:
    """WebVTT subtitles, one cue per segment (a ``<v S1>`` voice span when diarized)."""
    cues = []
    for i, s in enumerate(segments):
        who = _who(speakers, i)
        text = f"<v {who}>{s.text}" if who else s.text
        cues.append(f"{_clock(s.start_s, '.')} --> {_clock(s.end_s, '.')}\n{text}\n")
    return "WEBVTT\n\n" + "\n".join(cues)


def verbose_json(
    t: Transcript,
    task: str,
    words: bool,
    segments: bool,
    speakers: Speakers = None,
    word_speakers: Speakers = None,
) -> dict[str, Any]:
    """OpenAI's verbose_json: language, duration, segments and (on request) words; when
    diarized, each segment carries ``speaker`` and each word its own (``word_speakers``, in
    word order; a segment may span a change of speaker)."""
    body: dict[str, Any] = {
        "task": task,
        "language": t.language,
        "duration": round(t.duration_s, 3),
        "text": t.text,
    }
    if segments:
        body["segments"] = [
            {
                "id": s.id,
                "seek": 0,
                "start": s.start_s,
                "end": s.end_s,
                "text": s.text,
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": s.avg_logprob,
                "compression_ratio": 0.0,
                "no_speech_prob": s.no_speech_prob,
                "language": s.language or t.language,  # code-switched audio: per segment
            }
            | ({"speaker": _who(speakers, i)} if speakers is not None else {})
            for i, s in enumerate(t.segments)
        ]
    if words:
        flat = [w for s in t.segments for w in s.words]
        body["words"] = [
            {"word": w.word.strip(), "start": w.start_s, "end": w.end_s}
            | ({"speaker": _who(word_speakers, i)} if word_speakers is not None else {})
            for i, w in enumerate(flat)
        ]
    return body

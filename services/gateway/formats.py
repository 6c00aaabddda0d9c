"""Rendering a transcript in the OpenAI response formats (json, text, srt, vtt, verbose_json)."""

from typing import Any

from shared.messages import Segment, Transcript


def _clock(seconds: float, decimal: str) -> str:
    millis = round(max(seconds, 0.0) * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def srt(segments: list[Segment]) -> str:
    """SubRip subtitles, one cue per segment."""
    cues = [
        f"{i}\n{_clock(s.start_s, ',')} --> {_clock(s.end_s, ',')}\n{s.text}\n"
        for i, s in enumerate(segments, start=1)
    ]
    return "\n".join(cues)


def vtt(segments: list[Segment]) -> str:
    """WebVTT subtitles, one cue per segment."""
    cues = [f"{_clock(s.start_s, '.')} --> {_clock(s.end_s, '.')}\n{s.text}\n" for s in segments]
    return "WEBVTT\n\n" + "\n".join(cues)


def verbose_json(t: Transcript, task: str, words: bool, segments: bool) -> dict[str, Any]:
    """OpenAI's verbose_json: language, duration, segments and (on request) words."""
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
            for s in t.segments
        ]
    if words:
        body["words"] = [
            {"word": w.word.strip(), "start": w.start_s, "end": w.end_s}
            for s in t.segments
            for w in s.words
        ]
    return body

"""Speaker worker settings (prefix ``SPEAKER_``)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import WorkerSettings


class SpeakerSettings(WorkerSettings):
    model_config = SettingsConfigDict(env_prefix="SPEAKER_", extra="ignore", populate_by_name=True)

    threads: int = Field(1, ge=1, le=64, description="threads per encoder call")
    vad_threshold: float = Field(
        0.5, gt=0, lt=1, description="Silero speech probability that starts speech"
    )
    window_s: float = Field(
        1.5, ge=0.5, le=4.0, description="audio per diarization embedding (shorter: finer turns)"
    )
    step_s: float = Field(0.75, ge=0.1, le=4.0, description="hop between diarization windows")
    same_speaker_cosine: float = Field(
        0.9,
        gt=0,
        lt=1,
        description="clusters whose centroids are this alike are one speaker (count estimate)",
    )
    max_speakers: int = Field(8, ge=1, le=32, description="most speakers a file is split into")
    max_audio_s: float = Field(
        3_600.0, gt=0, le=36_000, description="longer audio is refused as audio_too_long"
    )

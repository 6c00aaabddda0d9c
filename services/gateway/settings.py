"""Gateway settings (prefix ``GATEWAY_``)."""

import uuid

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", populate_by_name=True)

    host: str = Field("127.0.0.1", description="interface to bind")
    port: int = Field(8000, ge=1, le=65_535, description="HTTP port")
    instance_id: str = Field(
        default_factory=lambda: uuid.uuid4().hex[:12],
        description="names this instance's reply stream; unique per process",
    )
    request_timeout_s: float = Field(
        120.0, gt=0, le=3_600, description="a job not answered in this time gets HTTP 504"
    )
    max_upload_bytes: int = Field(
        100 * 1024 * 1024, ge=1_024, description="largest accepted upload"
    )
    max_audio_s: float = Field(3_600.0, gt=0, description="longest accepted audio")
    default_stt_model: str = Field(
        "tiny.en", description="model used for 'whisper-1' when the language is English/unknown"
    )
    required_stages: list[str] = Field(
        default_factory=lambda: ["stt"], description="/ready needs a live worker for each"
    )
    monitor_interval_s: float = Field(5.0, gt=0, description="stream/worker gauge refresh")
    registry_cache_s: float = Field(1.0, ge=0, description="how long a worker listing is reused")

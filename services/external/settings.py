"""External adapter settings (prefix ``EXT_``)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import WorkerSettings


class ExternalSettings(WorkerSettings):
    model_config = SettingsConfigDict(env_prefix="EXT_", extra="ignore", populate_by_name=True)

    request_timeout_s: float = Field(
        60.0, gt=0, le=3_600, description="longest one call to an external server may take"
    )
    health_timeout_s: float = Field(3.0, gt=0, le=60, description="timeout of GET /health")
    recheck_interval_s: float = Field(
        10.0, gt=0, le=3_600, description="how often every server's health is checked again"
    )
    discovery_interval_s: float = Field(
        2.0, gt=0, le=600, description="how often the registry in Redis is read for changes"
    )

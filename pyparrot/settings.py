"""CLI settings (prefix ``PYPARROT_``)."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class CliSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PYPARROT_", extra="ignore", populate_by_name=True)

    home: Path = Field(
        Path("~/.pyparrot"), description="pid files, logs and pipeline configurations"
    )
    shared_redis: bool = Field(
        False,
        description="let `up` use a Redis that holds other applications' keys (it refuses "
        "otherwise: it would create streams and consumer groups among them)",
    )
    redis_cluster: int = Field(
        0,
        ge=0,
        le=64,
        description="`up` starts a local Redis Cluster of this many primaries instead of one "
        "Redis; 0 = one Redis",
    )
    redis_replicas: int = Field(
        0, ge=0, le=5, description="replicas of each primary of that local Redis Cluster"
    )
    ready_timeout_s: float = Field(180.0, gt=0, description="how long `up` waits for /ready")
    stop_timeout_s: float = Field(20.0, gt=0, description="SIGTERM grace before SIGKILL")
    restart_backoff_s: float = Field(
        1.0,
        gt=0,
        le=600,
        description="pause before `up` restarts a process that exited; doubles with each "
        "crash in a row",
    )
    restart_backoff_max_s: float = Field(
        30.0, gt=0, le=3_600, description="longest pause before `up` restarts a process"
    )

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser()

    @property
    def logs_dir(self) -> Path:
        return self.home_dir / "logs"

    @property
    def keys_marker_dir(self) -> Path:
        """Where the gateway (and ``keys create``) record that API keys exist."""
        return self.home_dir / "auth"

    @property
    def state_file(self) -> Path:
        return self.home_dir / "run" / "up.json"

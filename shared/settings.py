"""Settings every process shares. Built once at start-up and passed down; nothing else
reads the environment.

Shared fields (``REDIS_URL``, ``LOG_LEVEL``) are unprefixed; each service subclasses
``WorkerSettings`` or ``ServiceSettings`` with its own ``env_prefix`` for the rest.
"""

import logging
import os
import socket

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _unprefixed(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


class ServiceSettings(BaseSettings):
    """What every PyParrot process needs."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        validation_alias=_unprefixed("REDIS_URL"),
        description="Redis holding every stream, heartbeat and key",
    )
    log_level: str = Field(
        "INFO", validation_alias=_unprefixed("LOG_LEVEL"), description="Python logging level"
    )
    redis_connect_attempts: int = Field(
        30, ge=1, le=10_000, description="attempts before giving up on an unreachable Redis"
    )
    redis_backoff_max_s: float = Field(
        5.0, gt=0, le=60, description="longest pause between reconnection attempts"
    )
    stream_parts: dict[str, int] = Field(
        {},
        validation_alias=_unprefixed("STREAM_PARTS"),
        description='stage variants spread over several streams, e.g. {"stt:tiny.en": 3}; '
        "the gateway and that stage's workers must be given the same value",
    )
    metrics_port: int = Field(0, ge=0, le=65_535, description="Prometheus port; 0 disables it")


class WorkerSettings(ServiceSettings):
    """The consumer-group loop's knobs; each worker service gives them its prefix."""

    worker_name: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}",
        description="consumer name in the group; unique per process",
    )
    concurrency: int = Field(1, ge=1, le=256, description="jobs handled at once")
    # Under redis-py's 5 s default socket timeout, or every idle read fails as an error.
    block_ms: int = Field(1_000, ge=1, le=4_000, description="XREADGROUP block time")
    claim_idle_ms: int = Field(
        30_000, ge=10, description="a pending job idle this long is taken from its consumer"
    )
    max_deliveries: int = Field(3, ge=1, le=100, description="deliveries before a job is dead")
    job_timeout_s: float = Field(120.0, gt=0, description="longest a handler may run")
    heartbeat_interval_s: float = Field(2.0, gt=0, description="heartbeat refresh period")
    heartbeat_ttl_s: float = Field(10.0, gt=0, description="a silent worker is gone after this")
    shutdown_grace_s: float = Field(30.0, ge=0, description="time to finish jobs on SIGTERM")


def configure_logging(level: str) -> None:
    """One log format for every process."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

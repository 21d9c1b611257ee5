"""Every app setting the code reads, named once, parsed once, typed."""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

STORAGE_BACKEND = "STORAGE_BACKEND"
EMBEDDED_DATA_DIR = "EMBEDDED_DATA_DIR"
COSMOS_DATABASE_NAME = "COSMOS_DATABASE_NAME"
WINDOW_SIZE = "WINDOW_SIZE"
SENSOR_COUNT = "SENSOR_COUNT"
SUMMARY_TTL_SECONDS = "SUMMARY_TTL_SECONDS"
READING_TTL_SECONDS = "READING_TTL_SECONDS"
READING_MAX_AGE_SECONDS = "READING_MAX_AGE_SECONDS"  # unset: READING_TTL_SECONDS' value; 0: no limit
EVENTHUB_NAME = "EVENTHUB_NAME"
EVENTHUB_EXTRA_HUBS = "EVENTHUB_EXTRA_HUBS"  # JSON list of further hubs (parse_hub_targets)
LOG_LEVEL = "LOG_LEVEL"  # the app's own log records: DEBUG, INFO (default), WARNING or ERROR

# The ingest API (shared.intake.ingest).
INGEST_MAX_BATCH = "INGEST_MAX_BATCH"
INGEST_MAX_BODY_BYTES = "INGEST_MAX_BODY_BYTES"
INGEST_MAX_FUTURE_SECONDS = "INGEST_MAX_FUTURE_SECONDS"
INGEST_METRICS = "INGEST_METRICS"  # JSON: metric -> {"unit", "min", "max"}, added to or replacing the defaults

# The dashboard (shared.dashboard): how often each chart range may get a new version, and the CSV download bound.
CHART_REFRESH_10M_SECONDS = "CHART_REFRESH_10M_SECONDS"
CHART_REFRESH_1H_SECONDS = "CHART_REFRESH_1H_SECONDS"
CHART_REFRESH_1D_SECONDS = "CHART_REFRESH_1D_SECONDS"
CHART_REFRESH_7D_SECONDS = "CHART_REFRESH_7D_SECONDS"
CSV_MAX_ROWS = "CSV_MAX_ROWS"

# Bulk import (shared.imports): files dropped into the `imports` container.
IMPORT_MAX_BYTES = "IMPORT_MAX_BYTES"  # largest file, and largest content once decompressed
IMPORT_MAX_ROWS = "IMPORT_MAX_ROWS"
IMPORT_UPLOAD_MAX_BYTES = "IMPORT_UPLOAD_MAX_BYTES"  # largest body of POST /api/imports

# Alerts (shared.alerts).
ALERT_WEBHOOK_URLS = "ALERT_WEBHOOK_URLS"  # JSON array of http(s) URLs; a Key Vault reference in Azure (tokens)
ALERT_WEBHOOK_TIMEOUT_SECONDS = "ALERT_WEBHOOK_TIMEOUT_SECONDS"
ALERT_DELIVERY_DEADLINE_SECONDS = "ALERT_DELIVERY_DEADLINE_SECONDS"  # retried this long, then a dead letter
ALERT_HISTORY_DAYS = "ALERT_HISTORY_DAYS"

# Microshare forwarding (shared.microshare). Unset MICROSHARE_USERNAME: forwarding is off.
MICROSHARE_AUTH_URL = "MICROSHARE_AUTH_URL"
MICROSHARE_API_URL = "MICROSHARE_API_URL"
MICROSHARE_USERNAME = "MICROSHARE_USERNAME"
MICROSHARE_PASSWORD = "MICROSHARE_PASSWORD"  # a Key Vault reference in Azure
MICROSHARE_API_KEY = "MICROSHARE_API_KEY"  # a Key Vault reference in Azure
MICROSHARE_CLUSTER_ID = "MICROSHARE_CLUSTER_ID"
MICROSHARE_CLUSTER_REC_TYPE = "MICROSHARE_CLUSTER_REC_TYPE"
MICROSHARE_PEOPLE_COUNTER_VIEW_ID = "MICROSHARE_PEOPLE_COUNTER_VIEW_ID"
MICROSHARE_SNAPSHOT_VIEW_ID = "MICROSHARE_SNAPSHOT_VIEW_ID"
MICROSHARE_DATA_CONTEXT = "MICROSHARE_DATA_CONTEXT"
MICROSHARE_IDENTITY = "MICROSHARE_IDENTITY"
MICROSHARE_LOCATION_PREFIX = "MICROSHARE_LOCATION_PREFIX"
MICROSHARE_SNAPSHOT_CATEGORY = "MICROSHARE_SNAPSHOT_CATEGORY"
MICROSHARE_SNAPSHOT_METRIC = "MICROSHARE_SNAPSHOT_METRIC"
MICROSHARE_PAGE_SIZE = "MICROSHARE_PAGE_SIZE"
MICROSHARE_TIMEOUT_SECONDS = "MICROSHARE_TIMEOUT_SECONDS"
MICROSHARE_OVERLAP_MINUTES = "MICROSHARE_OVERLAP_MINUTES"
MICROSHARE_DEDUP_RETENTION_HOURS = "MICROSHARE_DEDUP_RETENTION_HOURS"
MICROSHARE_FIRST_RUN_LOOKBACK_HOURS = "MICROSHARE_FIRST_RUN_LOOKBACK_HOURS"
MICROSHARE_BACKFILL_AFTER_HOURS = "MICROSHARE_BACKFILL_AFTER_HOURS"
MICROSHARE_BACKFILL_MAX_DAYS = "MICROSHARE_BACKFILL_MAX_DAYS"

# Read only by expressions (%NAME%) in the blueprints' bindings and host.json; listed so every name lives here.
SIMULATOR_SCHEDULE = "SIMULATOR_SCHEDULE"
EVENTHUB_CONSUMER_GROUP = "EVENTHUB_CONSUMER_GROUP"
LEASE_CONTAINER_PREFIX = "LEASE_CONTAINER_PREFIX"
TASKHUB_NAME = "TASKHUB_NAME"
ALERT_SILENCE_SCHEDULE = "ALERT_SILENCE_SCHEDULE"
ALERT_SENDER_SCHEDULE = "ALERT_SENDER_SCHEDULE"

BACKEND_EMBEDDED = "embedded"
BACKEND_AZURE = "azure"

MAX_WINDOW_SIZE = 500  # the window is one Table entity; 500 entries stay well under its 64 KiB property limit
MAX_SENSOR_COUNT = 10_000
MAX_LIFETIME_SECONDS = 10 * 365 * 86400  # the longest a reading or summary lives, and the largest maximum age


class SettingsError(RuntimeError):
    """A setting is missing or malformed; the message names it (never its value, which may be secret)."""


@dataclass(frozen=True, slots=True)
class Settings:
    storage_backend: str
    embedded_data_dir: Path
    cosmos_database: str
    window_size: int
    sensor_count: int
    summary_ttl_seconds: int
    reading_ttl_seconds: int
    reading_max_age: timedelta | None  # readings older than this are refused on every path; None: no limit
    eventhub_name: str
    hubs: tuple[HubTarget, ...]  # where the forwarder sends: the primary hub, then EVENTHUB_EXTRA_HUBS
    ingest: IngestSettings
    dashboard: DashboardSettings
    alerts: AlertSettings
    imports: ImportSettings

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        backend = env.get(STORAGE_BACKEND, BACKEND_AZURE).strip().lower()
        if backend not in (BACKEND_EMBEDDED, BACKEND_AZURE):
            raise SettingsError(f"{STORAGE_BACKEND} must be '{BACKEND_EMBEDDED}' or '{BACKEND_AZURE}'")
        reading_ttl_seconds = _int(env, READING_TTL_SECONDS, 7 * 86400, 0, MAX_LIFETIME_SECONDS)
        return cls(
            storage_backend=backend,
            embedded_data_dir=Path(env.get(EMBEDDED_DATA_DIR, ".devhost")),
            cosmos_database=env.get(COSMOS_DATABASE_NAME, "sensorpulse"),
            window_size=_int(env, WINDOW_SIZE, 10, 1, MAX_WINDOW_SIZE),
            sensor_count=_int(env, SENSOR_COUNT, 5, 0, MAX_SENSOR_COUNT),
            summary_ttl_seconds=_int(env, SUMMARY_TTL_SECONDS, 7 * 86400, 0, MAX_LIFETIME_SECONDS),
            reading_ttl_seconds=reading_ttl_seconds,
            reading_max_age=_reading_max_age(env, reading_ttl_seconds),
            eventhub_name=env.get(EVENTHUB_NAME, "telemetry"),
            hubs=tuple(parse_hub_targets(env.get(EVENTHUB_NAME, "telemetry"), env.get(EVENTHUB_EXTRA_HUBS))),
            ingest=IngestSettings.from_env(env),
            dashboard=DashboardSettings.from_env(env),
            alerts=AlertSettings.from_env(env),
            imports=ImportSettings.from_env(env),
        )


def _reading_max_age(env: Mapping[str, str], reading_ttl_seconds: int) -> timedelta | None:
    """READING_MAX_AGE_SECONDS: by default as long as a reading lives (a reading that would already have expired
    is not taken); 0, or a TTL of 0 (kept forever) with the setting unset, means no limit."""
    seconds = _int(env, READING_MAX_AGE_SECONDS, reading_ttl_seconds, 0, MAX_LIFETIME_SECONDS)
    return timedelta(seconds=seconds) if seconds else None


@dataclass(frozen=True, slots=True)
class DashboardSettings:
    # range name -> the least seconds between two versions of a series' chart over that range
    chart_refresh_seconds: Mapping[str, int]
    csv_max_rows: int  # rows in one CSV download at most

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DashboardSettings:
        return cls(
            chart_refresh_seconds={
                "10m": _int(env, CHART_REFRESH_10M_SECONDS, 5, 1, 600),
                "1h": _int(env, CHART_REFRESH_1H_SECONDS, 30, 1, 3600),
                "1d": _int(env, CHART_REFRESH_1D_SECONDS, 300, 1, 86400),
                "7d": _int(env, CHART_REFRESH_7D_SECONDS, 1800, 1, 7 * 86400),
            },
            csv_max_rows=_int(env, CSV_MAX_ROWS, 100_000, 1, 1_000_000),
        )


@dataclass(frozen=True, slots=True)
class AlertSettings:
    webhook_urls: tuple[str, ...] = field(repr=False)  # they often carry a token: never shown
    webhook_timeout_seconds: int
    delivery_deadline_seconds: int  # a notification not delivered by then is parked as a dead letter
    history_days: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AlertSettings:
        return cls(
            webhook_urls=parse_webhook_urls(env.get(ALERT_WEBHOOK_URLS, "")),
            webhook_timeout_seconds=_int(env, ALERT_WEBHOOK_TIMEOUT_SECONDS, 10, 1, 120),
            delivery_deadline_seconds=_int(env, ALERT_DELIVERY_DEADLINE_SECONDS, 3600, 10, 7 * 86400),
            history_days=_int(env, ALERT_HISTORY_DAYS, 30, 1, 365),
        )


@dataclass(frozen=True, slots=True)
class ImportSettings:
    """Limits of a bulk import: a file beyond them gets a result saying so and imports nothing."""

    max_bytes: int  # the stored file, and its content once decompressed (a gzip bomb stops here)
    max_rows: int
    upload_max_bytes: int  # the body of POST /api/imports; larger files go straight to the container

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ImportSettings:
        return cls(
            max_bytes=_int(env, IMPORT_MAX_BYTES, 2 * 1024**3, 1024, 1024**4),
            max_rows=_int(env, IMPORT_MAX_ROWS, 50_000_000, 1, 1_000_000_000),
            upload_max_bytes=_int(env, IMPORT_UPLOAD_MAX_BYTES, 100 * 1024**2, 1024, 200 * 1024**2),
        )


MAX_WEBHOOKS = 10


def parse_webhook_urls(raw: str) -> tuple[str, ...]:
    """ALERT_WEBHOOK_URLS: a JSON array of http(s) URLs (empty: no webhooks). Errors name the item, not its URL."""
    text = raw.strip()
    if not text:
        return ()
    try:
        items = json.loads(text)
    except ValueError:
        raise SettingsError(f'{ALERT_WEBHOOK_URLS} must be a JSON array of URLs, e.g. ["https://..."]') from None
    if not isinstance(items, list) or len(items) > MAX_WEBHOOKS:
        raise SettingsError(f"{ALERT_WEBHOOK_URLS} must be a JSON array of at most {MAX_WEBHOOKS} URLs")
    urls: list[str] = []
    for position, item in enumerate(items, start=1):
        parsed = urlsplit(item) if isinstance(item, str) else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise SettingsError(f"{ALERT_WEBHOOK_URLS} item {position} must be an http(s) URL")
        if parsed.username or parsed.password:
            raise SettingsError(
                f"{ALERT_WEBHOOK_URLS} item {position}: put credentials in the path or query, not in user:password@"
            )
        urls.append(str(item))
    if len(set(urls)) != len(urls):
        raise SettingsError(f"{ALERT_WEBHOOK_URLS} lists one URL twice")
    return tuple(urls)


@dataclass(frozen=True, slots=True)
class MicroshareSettings:
    """Where and how to read Microshare. Secrets are kept out of repr, so no log line or traceback shows them."""

    auth_url: str
    api_url: str
    username: str
    password: str = field(repr=False)
    api_key: str = field(repr=False)
    cluster_id: str
    cluster_rec_type: str
    people_counter_view_id: str
    snapshot_view_id: str
    data_context: str  # a JSON array as a string, exactly what the API expects
    identity: str | None  # owner organisation of the device clusters to use; None: every cluster
    location_prefix: str | None
    snapshot_category: str
    snapshot_metric: str
    page_size: int
    timeout_seconds: int
    overlap: timedelta
    dedup_retention: timedelta
    first_run_lookback: timedelta
    backfill_after: timedelta  # a timer facing a longer gap since its watermark starts a backfill instead
    backfill_max_span: timedelta

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> MicroshareSettings | None:
        """None when MICROSHARE_USERNAME is unset (forwarding off); otherwise every required setting must be set."""
        username = env.get(MICROSHARE_USERNAME, "").strip()
        if not username:
            return None
        overlap = timedelta(minutes=_int(env, MICROSHARE_OVERLAP_MINUTES, 60, 0, 7 * 24 * 60))
        retention = timedelta(hours=_int(env, MICROSHARE_DEDUP_RETENTION_HOURS, 72, 1, 90 * 24))
        if retention <= overlap:
            raise SettingsError(f"{MICROSHARE_DEDUP_RETENTION_HOURS} must be longer than {MICROSHARE_OVERLAP_MINUTES}")
        return cls(
            auth_url=_url(env, MICROSHARE_AUTH_URL, "https://auth.microshare.io"),
            api_url=_url(env, MICROSHARE_API_URL, "https://api.microshare.io"),
            username=username,
            password=_required(env, MICROSHARE_PASSWORD),
            api_key=_required(env, MICROSHARE_API_KEY),
            cluster_id=_required(env, MICROSHARE_CLUSTER_ID),
            cluster_rec_type=env.get(MICROSHARE_CLUSTER_REC_TYPE, "").strip() or "io.microshare.peoplecounter.packed",
            people_counter_view_id=_required(env, MICROSHARE_PEOPLE_COUNTER_VIEW_ID),
            snapshot_view_id=_required(env, MICROSHARE_SNAPSHOT_VIEW_ID),
            data_context=parse_data_context(env.get(MICROSHARE_DATA_CONTEXT, "")),
            identity=env.get(MICROSHARE_IDENTITY, "").strip() or None,
            location_prefix=env.get(MICROSHARE_LOCATION_PREFIX, "").strip() or None,
            snapshot_category=env.get(MICROSHARE_SNAPSHOT_CATEGORY, "").strip() or "space",
            snapshot_metric=env.get(MICROSHARE_SNAPSHOT_METRIC, "").strip() or "occupancy",
            page_size=_int(env, MICROSHARE_PAGE_SIZE, 999, 1, 999),
            timeout_seconds=_int(env, MICROSHARE_TIMEOUT_SECONDS, 30, 1, 600),
            overlap=overlap,
            dedup_retention=retention,
            first_run_lookback=timedelta(hours=_int(env, MICROSHARE_FIRST_RUN_LOOKBACK_HOURS, 24, 1, 90 * 24)),
            backfill_after=timedelta(hours=_int(env, MICROSHARE_BACKFILL_AFTER_HOURS, 6, 1, 90 * 24)),
            backfill_max_span=timedelta(days=_int(env, MICROSHARE_BACKFILL_MAX_DAYS, 31, 1, 366)),
        )


def parse_data_context(raw: str) -> str:
    """The data context as the JSON-array string the API needs. A bare name is wrapped; `[people]` (a shell
    stripped the quotes) is refused: the API would silently match nothing, as in a 9.5-hour outage."""
    text = raw.strip()
    if not text:
        raise SettingsError(f'{MICROSHARE_DATA_CONTEXT} is not set (e.g. ["people"])')
    if not text.startswith("["):
        if any(c in text for c in '[]",{}'):
            raise SettingsError(f"{MICROSHARE_DATA_CONTEXT} must be a name or a JSON array of names")
        return json.dumps([text])
    try:
        names = json.loads(text)
    except ValueError:
        raise SettingsError(
            f'{MICROSHARE_DATA_CONTEXT} must be a JSON array of quoted names, e.g. ["people"]; '
            "were its quotes stripped?"
        ) from None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise SettingsError(f"{MICROSHARE_DATA_CONTEXT} must be a non-empty JSON array of names")
    return json.dumps(names)


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"{name} is not set (needed because {MICROSHARE_USERNAME} is)")
    return value


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip() or default
    parsed = urlsplit(value)
    if parsed.scheme not in ("https", "http") or not parsed.netloc or parsed.query or parsed.fragment:
        raise SettingsError(f"{name} must be an http(s) base URL without query")
    if parsed.scheme == "http" and parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SettingsError(f"{name} must use https (plain http only for a local stand-in)")
    return value.rstrip("/")


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}")
    return value


LOG_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING, "ERROR": logging.ERROR}


def log_level_from_env(env: Mapping[str, str]) -> int:
    raw = env.get(LOG_LEVEL, "").strip().upper()
    if not raw:
        return logging.INFO
    if raw not in LOG_LEVELS:
        raise SettingsError(f"{LOG_LEVEL} must be one of {', '.join(LOG_LEVELS)}")
    return LOG_LEVELS[raw]


class MetricBounds(NamedTuple):
    """A metric INGEST_METRICS adds or replaces: its unit and plausible bounds (the reading rules' catalogue)."""

    unit: str
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class IngestSettings:
    """The ingest API's limits, and the metrics INGEST_METRICS adds to the reading rules' catalogue."""

    max_batch: int
    max_body_bytes: int
    max_future: timedelta
    metrics: Mapping[str, MetricBounds]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> IngestSettings:
        return cls(
            max_batch=_int(env, INGEST_MAX_BATCH, 100, 1, 1000),
            max_body_bytes=_int(env, INGEST_MAX_BODY_BYTES, 256 * 1024, 1024, 4 * 1024 * 1024),
            max_future=timedelta(seconds=_int(env, INGEST_MAX_FUTURE_SECONDS, 300, 0, 86400)),
            metrics=parse_metric_bounds(env.get(INGEST_METRICS)),
        )


def parse_metric_bounds(raw: str | None) -> dict[str, MetricBounds]:
    """INGEST_METRICS: a JSON object of metric -> {"unit", "min", "max"} (min and max optional)."""
    if raw is None or not raw.strip():
        return {}
    try:
        configured = json.loads(raw)
    except ValueError:
        raise SettingsError(f"{INGEST_METRICS} is not valid JSON") from None
    if not isinstance(configured, dict):
        raise SettingsError(
            f'{INGEST_METRICS} must be an object: {{"metric": {{"unit": ..., "min": ..., "max": ...}}}}'
        )
    bounds: dict[str, MetricBounds] = {}
    for metric, rule in configured.items():
        if not isinstance(rule, dict) or set(rule) - {"unit", "min", "max"} or "unit" not in rule:
            raise SettingsError(f"{INGEST_METRICS}.{metric} must be an object with unit, min and max")
        unit, low, high = rule["unit"], rule.get("min", -math.inf), rule.get("max", math.inf)
        numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (low, high))
        if not isinstance(unit, str) or not unit or not numbers or not low <= high:
            raise SettingsError(f"{INGEST_METRICS}.{metric}: unit must be a short string and min <= max")
        bounds[metric] = MetricBounds(unit, float(low), float(high))
    return bounds


# Event Hubs' naming rule. It also keeps "|" out of hub names, which makes "{hub}|{stream}" unambiguous.
HUB_NAME_PATTERN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,254}[A-Za-z0-9])?")
_SETTING_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
HUB_NAME_RULE = "1-256 letters, digits, '.', '-' or '_', starting and ending with a letter or digit"


@dataclass(frozen=True, slots=True)
class HubTarget:
    """A hub to deliver to; `connection` is the app-setting prefix of another namespace (None: the primary one)."""

    name: str
    connection: str | None = None


def parse_hub_targets(primary: str, extra_json: str | None) -> list[HubTarget]:
    """The primary hub, then those of EVENTHUB_EXTRA_HUBS in their order.

    Each item is a hub name or {"name": ..., "connection": ...}. Names must be unique, ignoring case as Event Hubs
    does, even across namespaces: delivery records are kept per hub name."""
    if not HUB_NAME_PATTERN.fullmatch(primary):
        raise SettingsError(f"{EVENTHUB_NAME} must be an event hub name: {HUB_NAME_RULE}")
    targets = [HubTarget(primary)]
    if extra_json is None or not extra_json.strip():
        return targets
    try:
        items = json.loads(extra_json)
    except ValueError:
        # `from None`: a JSONDecodeError carries the whole text, which is not ours to log.
        raise SettingsError(f"{EVENTHUB_EXTRA_HUBS} is not valid JSON") from None
    if not isinstance(items, list):
        raise SettingsError(f'{EVENTHUB_EXTRA_HUBS} must be a JSON list of hub names or {{"name", "connection"}}')
    seen = {primary.lower()}
    for position, item in enumerate(items, start=1):
        target = _hub_target(f"{EVENTHUB_EXTRA_HUBS} item {position}", item)
        if target.name.lower() in seen:
            raise SettingsError(f"{EVENTHUB_EXTRA_HUBS} item {position} names a hub that is already configured")
        seen.add(target.name.lower())
        targets.append(target)
    return targets


def _hub_target(where: str, item: object) -> HubTarget:
    connection: object = None
    if isinstance(item, str):
        name: object = item
    elif isinstance(item, dict):
        if not set(item) <= {"name", "connection"}:
            raise SettingsError(f"{where} may have only the fields 'name' and 'connection'")
        name, connection = item.get("name"), item.get("connection")
    else:
        raise SettingsError(f"{where} must be a hub name or an object with 'name' and optional 'connection'")
    if not isinstance(name, str) or not name.strip():
        raise SettingsError(f"{where} needs a non-empty hub name")
    if not HUB_NAME_PATTERN.fullmatch(name):
        raise SettingsError(f"{where}: a hub name is {HUB_NAME_RULE}")
    if connection is not None and not (isinstance(connection, str) and _SETTING_PREFIX.fullmatch(connection)):
        raise SettingsError(f"{where}: 'connection' must be an app-setting prefix (letters, digits and '_')")
    return HubTarget(name, connection)

"""Alerts raised by other platforms, as the JSON body of POST /api/alerts/inbound, turned into ExternalAlerts shown
beside the app's own. No I/O.

Two formats, told apart by their shape:
- a Prometheus Alertmanager webhook, version 4 (its `webhook_config` receiver): an `alerts` list, each alert with
  its status, labels, annotations, startsAt, endsAt (Go's zero time, 0001-01-01T00:00:00Z, while firing),
  generatorURL and fingerprint (absent from older senders, then derived from the labels);
- an Azure Monitor alert in the common alert schema (`schemaId` azureMonitorCommonAlertSchema): one alert per body,
  its `data.essentials` read; the alert context varies by signal and is not needed for a banner.

A body is read whole or not at all: its first fault raises InboundError naming the field by its path, e.g.
"alerts[2].startsAt: must be an ISO 8601 date and time ...". Messages name the field and the rule, never the value:
a sender's URLs may carry tokens in their query, and a body may hold anything.

An alert's fingerprint is the same in its firing and its resolved notification, so the resolution finds the alert
it ends: Alertmanager's own (or the labels' digest), Azure's derived from its alertId.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

MAX_INBOUND_ALERTS = 1000
MAX_ENTRIES = 64  # labels or annotations of one alert
MAX_KEY_LENGTH = 100
MAX_VALUE_LENGTH = 1000
MAX_SUMMARY_LENGTH = 300
MAX_URL_LENGTH = 2048  # a longer link is dropped, not refused: the alert matters more than its link
FINGERPRINT_LENGTH = 16  # hex digits, as Alertmanager writes its own

ALERTMANAGER_SOURCE = "alertmanager"
AZURE_MONITOR_SOURCE = "azure-monitor"
AZURE_SCHEMA_ID = "azureMonitorCommonAlertSchema"
ALERTMANAGER_VERSION = "4"
FIRING = "firing"
RESOLVED = "resolved"
SEVERITIES = ("critical", "warning", "info")

UNKNOWN_FORMAT_MESSAGE = "neither an Alertmanager webhook (version 4) nor Azure Monitor's common alert schema"
TIME_MESSAGE = "must be an ISO 8601 date and time with a UTC offset, e.g. 2026-01-01T12:00:00Z"

# A sender's fingerprint becomes a key downstream: short, and no character a key store refuses ('/', '#', '?').
_FINGERPRINT_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
# RFC 3339, as both senders write it: Go writes up to 9 fractional digits (nanoseconds), Azure 7. Python keeps
# microseconds, so the digits past 6 are dropped here rather than left to what fromisoformat tolerates.
_TIME_PATTERN = re.compile(r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})")
_GO_ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
_ALERTMANAGER_STATUSES = (FIRING, RESOLVED)
_ALERTMANAGER_SEVERITY_ALIASES = {"error": "critical", "page": "critical"}
_AZURE_SEVERITIES = {"Sev0": "critical", "Sev1": "critical", "Sev2": "warning", "Sev3": "info", "Sev4": "info"}
_AZURE_CONDITIONS = {"Fired": FIRING, "Resolved": RESOLVED}


@dataclass(frozen=True, slots=True)
class ExternalAlert:
    fingerprint: str  # stable for one alert across its firing and resolved notifications
    status: str  # "firing" | "resolved"
    name: str  # alertname / alertRule
    severity: str  # "critical" | "warning" | "info"
    summary: str  # one line for a banner: annotations summary, else description, else name; at most 300 chars
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime  # aware, UTC
    ends_at: datetime | None  # None while firing
    source: str  # "alertmanager" | "azure-monitor"
    url: str | None  # generatorURL (http/https only, else None)


class InboundError(ValueError):
    """A body that cannot be read as alerts. `field` is the path of the field at fault ("body" for the whole body),
    `message` the rule it breaks; str() is "field: message", e.g. 'alerts[2].startsAt: must be an ISO 8601 ...'.
    Neither holds a value from the body."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parse_inbound(body: object, received_at: datetime | None = None) -> list[ExternalAlert]:
    """The alerts of one decoded JSON body, in the sender's order; InboundError on the first field at fault.
    `received_at` (aware) ends an Azure Monitor alert resolved without `resolvedDateTime`, which Azure gives only for
    metric alerts; without it such a body is refused."""
    if not isinstance(body, dict):
        raise InboundError("body", "must be a JSON object")
    if body.get("schemaId") == AZURE_SCHEMA_ID:
        return [_azure_monitor_alert(body, received_at)]
    if "alerts" in body or "groupKey" in body:
        return _alertmanager_alerts(body)
    raise InboundError("body", UNKNOWN_FORMAT_MESSAGE)


def label_fingerprint(labels: Mapping[str, str]) -> str:
    """16 lowercase hex digits of sha256 over the labels sorted by name: the same set gives the same fingerprint
    whatever order a sender writes it in. For Alertmanager senders that predate the `fingerprint` field."""
    canonical = json.dumps(sorted(labels.items()), separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", errors="surrogatepass")).hexdigest()[:FINGERPRINT_LENGTH]


# --- Alertmanager -------------------------------------------------------------------------------------------------


def _alertmanager_alerts(body: dict[str, Any]) -> list[ExternalAlert]:
    if body.get("version") != ALERTMANAGER_VERSION:
        raise InboundError("version", f'must be "{ALERTMANAGER_VERSION}", the Alertmanager webhook version read here')
    alerts = body.get("alerts")
    if not isinstance(alerts, list):
        raise InboundError("alerts", "must be a list")
    if len(alerts) > MAX_INBOUND_ALERTS:
        raise InboundError("alerts", f"must hold at most {MAX_INBOUND_ALERTS} alerts")
    return [_alertmanager_alert(item, f"alerts[{index}]") for index, item in enumerate(alerts)]


def _alertmanager_alert(item: object, path: str) -> ExternalAlert:
    alert = _object(item, path)
    status = alert.get("status")
    if not isinstance(status, str) or status not in _ALERTMANAGER_STATUSES:
        raise InboundError(f"{path}.status", 'must be "firing" or "resolved"')
    labels = _entries(alert.get("labels"), f"{path}.labels", required=True)
    annotations = _entries(alert.get("annotations"), f"{path}.annotations", required=False)
    name = labels.get("alertname")
    if name is None or not name.strip():
        raise InboundError(f"{path}.labels.alertname", "is required")
    fingerprint = _sender_fingerprint(alert.get("fingerprint"), f"{path}.fingerprint") or label_fingerprint(labels)
    return ExternalAlert(
        fingerprint=fingerprint,
        status=status,
        name=name,
        severity=_alertmanager_severity(labels.get("severity")),
        summary=_summary(annotations, name),
        labels=labels,
        annotations=annotations,
        starts_at=_time(alert.get("startsAt"), f"{path}.startsAt"),
        ends_at=_end(alert.get("endsAt"), f"{path}.endsAt", status),
        source=ALERTMANAGER_SOURCE,
        url=_link(alert.get("generatorURL"), f"{path}.generatorURL"),
    )


def _alertmanager_severity(label: str | None) -> str:
    """The severity label, lowercased, when it is one of ours; "error" and "page" are critical; anything else, or
    none, is a warning: an alert someone routed here is worth a look, but not worth paging for on a guess."""
    severity = (label or "").strip().lower()
    if severity in SEVERITIES:
        return severity
    return _ALERTMANAGER_SEVERITY_ALIASES.get(severity, "warning")


def _sender_fingerprint(value: object, field: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _FINGERPRINT_PATTERN.fullmatch(value):
        raise InboundError(field, "must be 1-64 letters, digits, '-', '_', '.' or ':'")
    return value


# --- Azure Monitor ------------------------------------------------------------------------------------------------


def _azure_monitor_alert(body: dict[str, Any], received_at: datetime | None) -> ExternalAlert:
    data = _object(body.get("data"), "data")
    path = "data.essentials"
    essentials = _object(data.get("essentials"), path)
    alert_id = _required_text(essentials, "alertId", path)
    rule = _required_text(essentials, "alertRule", path)
    severity = _lookup(essentials.get("severity"), _AZURE_SEVERITIES)
    if severity is None:
        raise InboundError(f"{path}.severity", "must be one of Sev0, Sev1, Sev2, Sev3, Sev4")
    status = _lookup(essentials.get("monitorCondition"), _AZURE_CONDITIONS)
    if status is None:
        raise InboundError(f"{path}.monitorCondition", 'must be "Fired" or "Resolved"')
    target_id = _first_target(essentials.get("alertTargetIDs"), f"{path}.alertTargetIDs")
    optional = {
        "monitoring_service": _text(essentials, "monitoringService", path),
        "signal_type": _text(essentials, "signalType", path),
        "target": target_id.rstrip("/").rsplit("/", 1)[-1] if target_id else None,
    }
    labels = {"alertname": rule, "severity": severity} | {key: value for key, value in optional.items() if value}
    notes = {"description": _text(essentials, "description", path), "target_id": target_id}
    annotations = {key: value for key, value in notes.items() if value}
    return ExternalAlert(
        fingerprint=hashlib.sha256(alert_id.encode("utf-8", errors="surrogatepass")).hexdigest()[:FINGERPRINT_LENGTH],
        status=status,
        name=rule,
        severity=severity,
        summary=_summary(annotations, rule),
        labels=labels,
        annotations=annotations,
        starts_at=_time(essentials.get("firedDateTime"), f"{path}.firedDateTime"),
        ends_at=_end(_resolved_time(essentials, status, received_at), f"{path}.resolvedDateTime", status),
        source=AZURE_MONITOR_SOURCE,
        url=None,
    )


def _lookup(value: object, table: Mapping[str, str]) -> str | None:
    return table.get(value) if isinstance(value, str) else None


def _first_target(value: object, field: str) -> str | None:
    """The first affected resource's id: Azure lists the alert's targets, and a banner names one."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(target, str) for target in value):
        raise InboundError(field, "must be a list of resource ids")
    if not value or not value[0]:
        return None
    if len(value[0]) > MAX_VALUE_LENGTH:
        raise InboundError(f"{field}[0]", f"must be at most {MAX_VALUE_LENGTH} characters")
    first: str = value[0]
    return first


# --- fields -------------------------------------------------------------------------------------------------------


def _object(value: object, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InboundError(field, "must be a JSON object")
    return value


def _required_text(container: Mapping[str, Any], key: str, path: str) -> str:
    value = _text(container, key, path)
    if value is None or not value.strip():
        raise InboundError(f"{path}.{key}", "is required")
    return value


def _text(container: Mapping[str, Any], key: str, path: str) -> str | None:
    """A string field of at most MAX_VALUE_LENGTH characters (it becomes a label or annotation); null is absent."""
    value = container.get(key)
    field = f"{path}.{key}"
    if value is None:
        return None
    if not isinstance(value, str):
        raise InboundError(field, "must be a string")
    if len(value) > MAX_VALUE_LENGTH:
        raise InboundError(field, f"must be at most {MAX_VALUE_LENGTH} characters")
    return value


def _entries(value: object, field: str, *, required: bool) -> dict[str, str]:
    """Labels or annotations: an object of at most MAX_ENTRIES string values, keys and values capped, so one sender
    cannot make every banner and stored alert as large as its body."""
    if value is None and not required:
        return {}
    entries = _object(value, field)
    if len(entries) > MAX_ENTRIES:
        raise InboundError(field, f"must hold at most {MAX_ENTRIES} entries")
    checked: dict[str, str] = {}
    for key, item in entries.items():
        if not key or len(key) > MAX_KEY_LENGTH:
            raise InboundError(field, f"names must be 1-{MAX_KEY_LENGTH} characters")
        member = _member(field, key)
        if not isinstance(item, str):
            raise InboundError(member, "must be a string")
        if len(item) > MAX_VALUE_LENGTH:
            raise InboundError(member, f"must be at most {MAX_VALUE_LENGTH} characters")
        checked[key] = item
    return checked


def _member(path: str, key: str) -> str:
    """The path of one label or annotation: `labels.team`, or `labels["odd key"]` quoted with its control characters
    escaped, so a key cannot break the line an error is logged on."""
    if _PLAIN_KEY.fullmatch(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key)}]"


def _time(value: object, field: str) -> datetime:
    """An RFC 3339 time with its offset, in UTC."""
    if value is None:
        raise InboundError(field, "is required")
    match = _TIME_PATTERN.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InboundError(field, TIME_MESSAGE)
    day, clock, fraction, offset = match.groups()
    micros = (fraction or "")[:6].ljust(6, "0")
    offset = "+00:00" if offset in ("Z", "z") else offset
    try:
        return datetime.fromisoformat(f"{day}T{clock}.{micros}{offset}").astimezone(UTC)
    except (ValueError, OverflowError):  # a day or hour that does not exist; an offset that leaves the calendar
        raise InboundError(field, TIME_MESSAGE) from None


def _resolved_time(essentials: Mapping[str, Any], status: str, received_at: datetime | None) -> object:
    """Azure's resolvedDateTime; for a resolved log alert, which has none, the time it arrived."""
    given = essentials.get("resolvedDateTime")
    if given is None and status == RESOLVED and received_at is not None:
        return received_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return given


def _end(value: object, field: str, status: str) -> datetime | None:
    """When a resolved alert ended; None while firing, whatever the sender put there (Alertmanager Go's zero time,
    Azure null), though a value that is there must still be a time."""
    if status == FIRING:
        if value is not None:
            _time(value, field)
        return None
    if value is None:
        raise InboundError(field, "is required for a resolved alert")
    ended = _time(value, field)
    if ended == _GO_ZERO_TIME:
        raise InboundError(field, "must be a real time for a resolved alert, not the zero time")
    return ended


def _summary(annotations: Mapping[str, str], name: str) -> str:
    """One line for a banner: the summary annotation, else the description, else the name; whitespace runs (line
    breaks among them) become one space, and a longer line is cut to MAX_SUMMARY_LENGTH with an ellipsis."""
    line = ""
    for text in (annotations.get("summary"), annotations.get("description"), name):
        line = " ".join((text or "").split())
        if line:
            break
    if len(line) <= MAX_SUMMARY_LENGTH:
        return line
    return line[: MAX_SUMMARY_LENGTH - 1].rstrip() + "…"


def _link(value: object, field: str) -> str | None:
    """The sender's link, when it is an http(s) URL fit to put in a page; anything else is dropped, not refused.
    A URL with credentials in it (user:password@host) is dropped too: the banner is shown to every viewer."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InboundError(field, "must be a string")
    if not value or len(value) > MAX_URL_LENGTH or any(char <= " " or char == "\x7f" for char in value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return None
    return value

"""Inbound platform alerts: an Alertmanager webhook or an Azure Monitor common-schema alert as ExternalAlerts, and the
field a bad body hears about."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.alerts.inbound import (
    MAX_INBOUND_ALERTS,
    ExternalAlert,
    InboundError,
    label_fingerprint,
    parse_inbound,
)

GENERATOR_URL = "http://prometheus.example.org:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1"

# As Alertmanager 0.27 sends it to a webhook_config receiver: Go times with nanoseconds, Go's zero time as the end
# of a firing alert; the second alert is from an older sender, without a fingerprint.
ALERTMANAGER_BODY: dict[str, Any] = {
    "receiver": "sensor-pulse",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "GatewayDown",
                "instance": "gw-3.plant.example:9100",
                "job": "gateways",
                "severity": "critical",
            },
            "annotations": {
                "summary": "Gateway gw-3 has not answered for 5 minutes",
                "description": "Sensors behind gw-3 stop reporting.\nCheck its uplink.",
            },
            "startsAt": "2026-03-01T11:52:26.739266876+01:00",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": GENERATOR_URL,
            "fingerprint": "1a30ba71cca2921f",  # pragma: allowlist secret
        },
        {
            "status": "resolved",
            "labels": {"alertname": "DiskFilling", "instance": "db-1:9100", "severity": "Warning"},
            "annotations": {"description": "Disk /var on db-1 is 91% full"},
            "startsAt": "2026-03-01T09:00:03.000000001Z",
            "endsAt": "2026-03-01T10:15:03.999999999Z",
            "generatorURL": "http://prometheus.example.org:9090/graph?g0.expr=disk",
        },
    ],
    "groupLabels": {"job": "gateways"},
    "commonLabels": {"job": "gateways"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager.example.org:9093",
    "version": "4",
    "groupKey": '{}:{job="gateways"}',
    "truncatedAlerts": 0,
}

SUBSCRIPTION = "/subscriptions/00000000-1111-2222-3333-444444444444"
ALERTS = f"{SUBSCRIPTION}/providers/Microsoft.AlertsManagement/alerts"
VM_ID = f"{SUBSCRIPTION}/resourcegroups/pulse-rg/providers/microsoft.compute/virtualmachines/gateway-vm-2"
WORKSPACE_ID = f"{SUBSCRIPTION}/resourcegroups/pulse-rg/providers/microsoft.operationalinsights/workspaces/pulse-logs"


def azure_metric_alert(condition: str) -> dict[str, Any]:
    """A metric alert as Azure Monitor posts it to an action group's webhook (common alert schema)."""
    resolved = condition == "Resolved"
    return {
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {
                "alertId": f"{ALERTS}/aaaa0a0a-bb1b-cc2c-dd3d-eeee4e4e",
                "alertRule": "gateway-cpu-high",
                "severity": "Sev2",
                "signalType": "Metric",
                "monitorCondition": condition,
                "monitoringService": "Platform",
                "alertTargetIDs": [VM_ID],
                "configurationItems": ["gateway-vm-2"],
                "originAlertId": "00000000-1111_pulse-rg_microsoft.insights_metricAlerts_gateway-cpu-high_-11778",
                "firedDateTime": "2026-03-01T11:58:24.3713213Z",
                "resolvedDateTime": "2026-03-01T12:03:16.2246313Z" if resolved else None,
                "description": "CPU above 90% on a gateway VM",
                "essentialsVersion": "1.0",
                "alertContextVersion": "1.0",
            },
            "alertContext": {
                "properties": None,
                "conditionType": "SingleResourceMultipleMetricCriteria",
                "condition": {
                    "windowSize": "PT5M",
                    "allOf": [
                        {
                            "metricName": "Percentage CPU",
                            "metricNamespace": "Microsoft.Compute/virtualMachines",
                            "operator": "GreaterThan",
                            "threshold": "90",
                            "timeAggregation": "Average",
                            "dimensions": [],
                            "metricValue": 97.2,
                        }
                    ],
                    "windowStartTime": "2026-03-01T11:53:03.064Z",
                    "windowEndTime": "2026-03-01T11:58:03.064Z",
                },
            },
            "customProperties": None,
        },
    }


AZURE_LOG_ALERT: dict[str, Any] = {
    "schemaId": "azureMonitorCommonAlertSchema",
    "data": {
        "essentials": {
            "alertId": f"{ALERTS}/bbbb1b1b-cc2c-dd3d-ee4e-ffff5f5f",
            "alertRule": "ingest-rejections",
            "severity": "Sev3",
            "signalType": "Log",
            "monitorCondition": "Fired",
            "monitoringService": "Log Alerts V2",
            "alertTargetIDs": [WORKSPACE_ID],
            "configurationItems": ["pulse-func"],
            "originAlertId": "cccc2c2c-dd3d-ee4e-ff5f-aaaa6a6a",
            "firedDateTime": "2026-03-01T12:10:05.1234567Z",
            "description": "More than 50 rejected readings in 10 minutes",
            "essentialsVersion": "1.0",
            "alertContextVersion": "1.0",
        },
        "alertContext": {
            "properties": {},
            "conditionType": "LogQueryCriteria",
            "condition": {
                "windowSize": "PT10M",
                "allOf": [
                    {
                        "searchQuery": "AppTraces | where Message has 'rejected'",
                        "operator": "GreaterThan",
                        "threshold": "50",
                        "timeAggregation": "Count",
                        "metricValue": 73.0,
                        "linkToSearchResultsAPI": "https://api.loganalytics.io/v1/workspaces/x/query?query=AppTraces",
                    }
                ],
                "windowStartTime": "2026-03-01T12:00:00Z",
                "windowEndTime": "2026-03-01T12:10:00Z",
            },
        },
        "customProperties": None,
    },
}


def alertmanager(*alerts: dict[str, Any], **top: Any) -> dict[str, Any]:
    body = copy.deepcopy(ALERTMANAGER_BODY)
    body["alerts"] = [copy.deepcopy(alert) for alert in alerts] if alerts else body["alerts"]
    body.update(top)
    return body


def firing(**changes: Any) -> dict[str, Any]:
    alert: dict[str, Any] = copy.deepcopy(ALERTMANAGER_BODY["alerts"][0])
    alert.update(changes)
    return {key: value for key, value in alert.items() if value is not ...}


def azure(**essentials: Any) -> dict[str, Any]:
    body = azure_metric_alert("Fired")
    body["data"]["essentials"].update(essentials)
    body["data"]["essentials"] = {k: v for k, v in body["data"]["essentials"].items() if v is not ...}
    return body


def refused(body: object) -> InboundError:
    with pytest.raises(InboundError) as caught:
        parse_inbound(body)
    return caught.value


# --- Alertmanager -------------------------------------------------------------------------------------------------


def test_an_alertmanager_webhook_gives_one_alert_per_alert_in_order() -> None:
    gateway, disk = parse_inbound(ALERTMANAGER_BODY)

    assert gateway == ExternalAlert(
        fingerprint="1a30ba71cca2921f",  # pragma: allowlist secret
        status="firing",
        name="GatewayDown",
        severity="critical",
        summary="Gateway gw-3 has not answered for 5 minutes",
        labels=ALERTMANAGER_BODY["alerts"][0]["labels"],
        annotations=ALERTMANAGER_BODY["alerts"][0]["annotations"],
        starts_at=datetime(2026, 3, 1, 10, 52, 26, 739266, tzinfo=UTC),
        ends_at=None,
        source="alertmanager",
        url=GENERATOR_URL,
    )
    assert disk.status == "resolved"
    assert disk.name == "DiskFilling"
    assert disk.severity == "warning"
    assert disk.summary == "Disk /var on db-1 is 91% full"
    assert disk.starts_at == datetime(2026, 3, 1, 9, 0, 3, tzinfo=UTC)
    assert disk.ends_at == datetime(2026, 3, 1, 10, 15, 3, 999999, tzinfo=UTC)
    assert disk.fingerprint == label_fingerprint(ALERTMANAGER_BODY["alerts"][1]["labels"])
    assert disk.starts_at.tzinfo is UTC and disk.ends_at.tzinfo is UTC


def test_an_alert_without_a_fingerprint_keeps_the_same_one_from_firing_to_resolved() -> None:
    labels = {"alertname": "DiskFilling", "instance": "db-1:9100", "severity": "warning"}
    fired = firing(labels=labels, fingerprint=...)
    resolved = firing(labels=dict(reversed(labels.items())), status="resolved", endsAt="2026-03-01T12:30:00Z")
    del resolved["fingerprint"]

    first, second = parse_inbound(alertmanager(fired, resolved))

    assert first.fingerprint == second.fingerprint == label_fingerprint(labels)
    assert re.fullmatch(r"[0-9a-f]{16}", first.fingerprint)


@pytest.mark.parametrize(
    ("label", "severity"),
    [
        ("critical", "critical"),
        ("Warning", "warning"),
        (" INFO ", "info"),
        ("error", "critical"),
        ("page", "critical"),
        ("high", "warning"),
        (..., "warning"),
    ],
)
def test_the_severity_label_maps_to_ours(label: Any, severity: str) -> None:
    labels = {"alertname": "X", "severity": label}
    (alert,) = parse_inbound(alertmanager(firing(labels={k: v for k, v in labels.items() if v is not ...})))
    assert alert.severity == severity


def test_the_summary_is_one_line_of_at_most_300_characters() -> None:
    long = "Readings late\n\n  on " + "gw-3 " * 100
    (alert,) = parse_inbound(alertmanager(firing(annotations={"summary": "  ", "description": long})))
    assert len(alert.summary) == 300
    assert alert.summary.startswith("Readings late on gw-3 gw-3")
    assert alert.summary.endswith("…")
    assert "\n" not in alert.summary

    (bare,) = parse_inbound(alertmanager(firing(annotations=...)))
    assert bare.summary == "GatewayDown"
    assert bare.annotations == {}


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://grafana.example.org/alerting/abc/edit", True),
        (GENERATOR_URL, True),
        ("javascript:alert(1)", False),
        ("ftp://example.org/x", False),
        ("https://user:secret@prometheus.example.org/graph", False),  # pragma: allowlist secret
        ("http:///no-host", False),
        ("https://example.org/a b", False),
        ("", False),
        (None, False),
    ],
)
def test_only_an_http_link_is_kept(url: str | None, kept: bool) -> None:
    (alert,) = parse_inbound(alertmanager(firing(generatorURL=url)))
    assert alert.url == (url if kept else None)


def test_times_in_any_offset_come_out_in_utc_with_microseconds() -> None:
    (alert,) = parse_inbound(alertmanager(firing(startsAt="2026-03-01T23:30:00.1234567-02:00")))
    assert alert.starts_at == datetime(2026, 3, 2, 1, 30, 0, 123456, tzinfo=UTC)


def test_a_firing_alert_has_no_end_whatever_the_sender_wrote() -> None:
    (alert,) = parse_inbound(alertmanager(firing(endsAt="2026-03-01T13:00:00Z")))
    assert alert.ends_at is None


# --- Azure Monitor ------------------------------------------------------------------------------------------------


def test_an_azure_metric_alert_fired_then_resolved_is_one_alert() -> None:
    (fired,) = parse_inbound(azure_metric_alert("Fired"))
    (resolved,) = parse_inbound(azure_metric_alert("Resolved"))

    assert fired == ExternalAlert(
        fingerprint=fired.fingerprint,
        status="firing",
        name="gateway-cpu-high",
        severity="warning",
        summary="CPU above 90% on a gateway VM",
        labels={
            "alertname": "gateway-cpu-high",
            "severity": "warning",
            "monitoring_service": "Platform",
            "signal_type": "Metric",
            "target": "gateway-vm-2",
        },
        annotations={"description": "CPU above 90% on a gateway VM", "target_id": VM_ID},
        starts_at=datetime(2026, 3, 1, 11, 58, 24, 371321, tzinfo=UTC),
        ends_at=None,
        source="azure-monitor",
        url=None,
    )
    assert re.fullmatch(r"[0-9a-f]{16}", fired.fingerprint)
    assert resolved.fingerprint == fired.fingerprint
    assert resolved.status == "resolved"
    assert resolved.starts_at == fired.starts_at
    assert resolved.ends_at == datetime(2026, 3, 1, 12, 3, 16, 224631, tzinfo=UTC)


def test_an_azure_log_alert() -> None:
    (alert,) = parse_inbound(AZURE_LOG_ALERT)

    assert alert.status == "firing"
    assert alert.name == "ingest-rejections"
    assert alert.severity == "info"
    assert alert.labels == {
        "alertname": "ingest-rejections",
        "severity": "info",
        "monitoring_service": "Log Alerts V2",
        "signal_type": "Log",
        "target": "pulse-logs",
    }
    assert alert.annotations["target_id"] == WORKSPACE_ID
    assert alert.summary == "More than 50 rejected readings in 10 minutes"
    assert alert.starts_at == datetime(2026, 3, 1, 12, 10, 5, 123456, tzinfo=UTC)
    assert alert.ends_at is None
    assert alert.url is None
    other = parse_inbound(azure_metric_alert("Fired"))[0]
    assert alert.fingerprint != other.fingerprint


@pytest.mark.parametrize(
    ("severity", "ours"),
    [("Sev0", "critical"), ("Sev1", "critical"), ("Sev2", "warning"), ("Sev3", "info"), ("Sev4", "info")],
)
def test_azure_severities_map_to_ours(severity: str, ours: str) -> None:
    (alert,) = parse_inbound(azure(severity=severity))
    assert alert.severity == alert.labels["severity"] == ours


def test_an_azure_alert_without_targets_or_description_names_its_rule() -> None:
    (alert,) = parse_inbound(azure(alertTargetIDs=[], description="", monitoringService=..., signalType=None))
    assert alert.labels == {"alertname": "gateway-cpu-high", "severity": "warning"}
    assert alert.annotations == {}
    assert alert.summary == "gateway-cpu-high"


# --- bad bodies ---------------------------------------------------------------------------------------------------


def many(count: int) -> list[dict[str, Any]]:
    return [firing(fingerprint=f"{index:016x}") for index in range(count)]


BAD_BODIES: list[tuple[str, object, str]] = [
    ("a list", [ALERTMANAGER_BODY], "body"),
    ("a string", json.dumps(ALERTMANAGER_BODY), "body"),
    ("null", None, "body"),
    ("unknown format", {"title": "CPU high", "state": "alerting"}, "body"),
    ("another Azure schema", {"schemaId": "Microsoft.Insights/activityLogs", "data": {}}, "body"),
    ("version 3", alertmanager(version="3"), "version"),
    ("version as a number", alertmanager(version=4), "version"),
    ("no version", {k: v for k, v in ALERTMANAGER_BODY.items() if k != "version"}, "version"),
    ("alerts not a list", alertmanager(alerts={"0": firing()}), "alerts"),
    ("too many alerts", alertmanager(alerts=many(MAX_INBOUND_ALERTS + 1)), "alerts"),
    ("an alert not an object", alertmanager(alerts=[firing(), "GatewayDown"]), "alerts[1]"),
    ("missing labels", alertmanager(firing(), firing(labels=...)), "alerts[1].labels"),
    ("labels a list", alertmanager(firing(labels=[["alertname", "X"]])), "alerts[0].labels"),
    (
        "label value a number",
        alertmanager(firing(labels={"alertname": "X", "severity": 2})),
        "alerts[0].labels.severity",
    ),
    ("no alertname", alertmanager(firing(labels={"job": "gateways"})), "alerts[0].labels.alertname"),
    ("annotation value null", alertmanager(firing(annotations={"summary": None})), "alerts[0].annotations.summary"),
    ("65 labels", alertmanager(firing(labels={f"l{i}": "v" for i in range(65)})), "alerts[0].labels"),
    ("a label name too long", alertmanager(firing(labels={"alertname": "X", "k" * 101: "v"})), "alerts[0].labels"),
    (
        "a label value too long",
        alertmanager(firing(labels={"alertname": "X", "job": "v" * 1001})),
        "alerts[0].labels.job",
    ),
    ("an odd label name", alertmanager(firing(labels={"alertname": "X", "a\nb": 1})), 'alerts[0].labels["a\\nb"]'),
    ("bad status", alertmanager(firing(status="pending")), "alerts[0].status"),
    ("bad time", alertmanager(firing(), firing(startsAt="yesterday")), "alerts[1].startsAt"),
    ("time without offset", alertmanager(firing(startsAt="2026-03-01T11:52:26")), "alerts[0].startsAt"),
    ("time a number", alertmanager(firing(startsAt=1772365946)), "alerts[0].startsAt"),
    ("a day that does not exist", alertmanager(firing(startsAt="2026-02-30T10:00:00Z")), "alerts[0].startsAt"),
    ("ten fraction digits", alertmanager(firing(startsAt="2026-03-01T10:00:00.1234567890Z")), "alerts[0].startsAt"),
    ("no start", alertmanager(firing(startsAt=...)), "alerts[0].startsAt"),
    ("a firing end not a time", alertmanager(firing(endsAt="never")), "alerts[0].endsAt"),
    ("resolved at the zero time", alertmanager(firing(status="resolved")), "alerts[0].endsAt"),
    ("resolved without end", alertmanager(firing(status="resolved", endsAt=...)), "alerts[0].endsAt"),
    ("fingerprint with a slash", alertmanager(firing(fingerprint="a/b")), "alerts[0].fingerprint"),
    ("generatorURL a number", alertmanager(firing(generatorURL=9090)), "alerts[0].generatorURL"),
    ("Azure without data", {"schemaId": "azureMonitorCommonAlertSchema"}, "data"),
    (
        "Azure essentials a list",
        {"schemaId": "azureMonitorCommonAlertSchema", "data": {"essentials": []}},
        "data.essentials",
    ),
    ("Azure without alertId", azure(alertId=...), "data.essentials.alertId"),
    ("Azure blank alertRule", azure(alertRule=" "), "data.essentials.alertRule"),
    ("Azure Sev5", azure(severity="Sev5"), "data.essentials.severity"),
    ("Azure condition", azure(monitorCondition="Active"), "data.essentials.monitorCondition"),
    ("Azure targets not strings", azure(alertTargetIDs=[{"id": VM_ID}]), "data.essentials.alertTargetIDs"),
    ("Azure description a number", azure(description=7), "data.essentials.description"),
    ("Azure bad fired time", azure(firedDateTime="3/22/2019 1:36:31 PM"), "data.essentials.firedDateTime"),
    ("Azure resolved without end", azure(monitorCondition="Resolved"), "data.essentials.resolvedDateTime"),
]


@pytest.mark.parametrize(
    ("body", "field"), [(body, field) for _, body, field in BAD_BODIES], ids=[c[0] for c in BAD_BODIES]
)
def test_a_bad_body_names_the_field_at_fault(body: object, field: str) -> None:
    error = refused(body)
    assert error.field == field
    assert str(error) == f"{field}: {error.message}"


def test_an_unknown_body_hears_which_formats_are_read() -> None:
    error = refused({"alerts_count": 3})
    assert str(error) == "body: neither an Alertmanager webhook (version 4) nor Azure Monitor's common alert schema"


def test_a_message_never_repeats_a_value_from_the_body() -> None:
    leaky = "https://prometheus.example.org/graph?token=s3cr3t"
    for body in (
        alertmanager(firing(startsAt=leaky)),
        alertmanager(firing(fingerprint=leaky)),
        alertmanager(firing(labels={"alertname": "X", "url": leaky * 100})),
        alertmanager(version=leaky),
        azure(severity=leaky),
        azure(resolvedDateTime=leaky, monitorCondition="Resolved"),
    ):
        assert "s3cr3t" not in str(refused(body))


def test_an_inbound_error_keeps_its_field_and_message() -> None:
    error = InboundError("alerts[2].startsAt", "not an ISO 8601 time")
    assert (error.field, error.message) == ("alerts[2].startsAt", "not an ISO 8601 time")
    assert str(error) == "alerts[2].startsAt: not an ISO 8601 time"
    assert isinstance(error, ValueError)


def test_exactly_the_limits_are_accepted() -> None:
    labels = {f"l{i}": "v" * 1000 for i in range(63)} | {"alertname": "X"}
    labels["k" * 100] = labels.pop("l0")
    assert len(labels) == 64
    assert len(parse_inbound(alertmanager(*many(MAX_INBOUND_ALERTS)))) == MAX_INBOUND_ALERTS
    (alert,) = parse_inbound(alertmanager(firing(labels=labels)))
    assert alert.labels == labels


# --- the derived fingerprint --------------------------------------------------------------------------------------


@given(st.dictionaries(st.text(max_size=30), st.text(max_size=60), max_size=20), st.data())
def test_a_derived_fingerprint_does_not_depend_on_label_order(labels: dict[str, str], data: st.DataObject) -> None:
    shuffled = dict(data.draw(st.permutations(list(labels.items()))))
    fingerprint = label_fingerprint(labels)
    assert label_fingerprint(shuffled) == fingerprint
    assert re.fullmatch(r"[0-9a-f]{16}", fingerprint)


def test_a_resolved_log_alert_without_resolved_time_ends_when_it_arrived() -> None:
    body = azure_metric_alert("Resolved")
    body["data"]["essentials"]["resolvedDateTime"] = None  # Azure gives it for metric alerts only
    arrived = datetime(2026, 3, 1, 12, 10, tzinfo=UTC)

    (alert,) = parse_inbound(body, received_at=arrived)

    assert alert.status == "resolved"
    assert alert.ends_at == arrived
    with pytest.raises(InboundError) as refused:  # without the arrival time there is nothing to end it at
        parse_inbound(body)
    assert refused.value.field == "data.essentials.resolvedDateTime"

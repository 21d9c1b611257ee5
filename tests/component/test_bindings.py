"""The binding metadata the Functions host indexes: triggers, settings they name, and the site-root route."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.component.app_functions import app_functions

ROOT = Path(__file__).resolve().parents[2]
SETTING_EXPRESSION = re.compile(r"%([^%]+)%")

HTTP_ROUTES = {
    "dashboard_page": "{ignored:maxlength(0)?}",
    "series_page": "sensors/{sensor_id}",
    "list_sensors": "api/sensors",
    "sensor_series": "api/sensors/{sensor_id}",
    "list_summaries": "api/sensors/{sensor_id}/summaries",
    "sensor_chart": "api/plots/{sensor_id}.png",
    "list_devices": "api/devices",
    "health": "api/health",
    "ready": "api/ready",
    "overview": "api/overview",
    "list_readings": "api/sensors/{sensor_id}/readings",
    "openapi_json": "api/openapi.json",
    "readings_csv": "api/sensors/{sensor_id}/readings.csv",
    "summaries_csv": "api/sensors/{sensor_id}/summaries.csv",
    "list_alerts": "api/alerts",
}
KEYED_ROUTES = {
    "post_readings": ("api/readings", "POST"),
    "metrics": ("api/metrics", "GET"),
    "put_alert_rule": ("api/alerts/rules/{name}", "PUT"),
    "list_alert_rules": ("api/alerts/rules", "GET"),
    "delete_alert_rule": ("api/alerts/rules/{name}", "DELETE"),
    "test_alert_webhooks": ("api/alerts/test", "POST"),
    "receive_alerts": ("api/alerts/inbound", "POST"),
    "upload_import": ("api/imports", "POST"),
    "list_imports": ("api/imports", "GET"),
}
ADMIN_ROUTES = {
    "start_backfill": ("api/microshare/backfill", "POST"),
    "backfill_status": ("api/microshare/backfill/{instance_id}", "GET"),
    "import_status": ("api/imports/{import_id}", "GET"),
}


@pytest.fixture(scope="module")
def bindings() -> dict[str, list[dict[str, Any]]]:
    return {name: json.loads(f.get_function_json())["bindings"] for name, f in app_functions().items()}


def trigger(bindings: dict[str, list[dict[str, Any]]], name: str) -> dict[str, Any]:
    triggers = [b for b in bindings[name] if str(b["type"]).endswith("Trigger")]
    assert len(triggers) == 1, f"{name} must have exactly one trigger"
    return triggers[0]


def sample_settings() -> dict[str, str]:
    values: dict[str, str] = json.loads((ROOT / "local.settings.sample.json").read_text(encoding="utf-8"))["Values"]
    return values


def test_the_app_has_exactly_the_expected_functions(bindings: dict[str, list[dict[str, Any]]]) -> None:
    assert set(bindings) == {
        "simulate_sensors",
        "summarise_readings",
        "summarise_events",
        "forward_people_counter",
        "forward_hourly_snapshot",
        "microshare_backfill",
        "backfill_locations",
        "backfill_window",
        "backfill_finish",
        "warmup",
        "evaluate_silences",
        "send_alert_notifications",
        "import_blob",
        "import_file",
        "import_chunk",
        "import_finish",
        *HTTP_ROUTES,
        *KEYED_ROUTES,
        *ADMIN_ROUTES,
    }


def test_the_ingest_route_needs_a_function_key(bindings: dict[str, list[dict[str, Any]]]) -> None:
    for name, (route, method) in KEYED_ROUTES.items():
        http = trigger(bindings, name)
        assert (http["route"], [m.upper() for m in http["methods"]]) == (route, [method])
        assert str(http["authLevel"]).lower() == "function", name


def test_backfill_routes_need_a_function_key_and_get_a_durable_client(
    bindings: dict[str, list[dict[str, Any]]],
) -> None:
    for name, (route, method) in ADMIN_ROUTES.items():
        http = trigger(bindings, name)
        assert http["route"] == route
        assert [m.upper() for m in http["methods"]] == [method]
        assert str(http["authLevel"]).lower() == "function", name
        assert any(b["type"] == "durableClient" for b in bindings[name]), name
    for name in ("forward_people_counter", "forward_hourly_snapshot"):
        assert any(b["type"] == "durableClient" for b in bindings[name]), name  # to hand a long gap to a backfill


def test_the_backfill_orchestration_and_its_activities_are_bound(bindings: dict[str, list[dict[str, Any]]]) -> None:
    assert trigger(bindings, "microshare_backfill")["type"] == "orchestrationTrigger"
    for name in ("backfill_locations", "backfill_window", "backfill_finish"):
        assert trigger(bindings, name)["type"] == "activityTrigger"


def test_a_file_in_imports_starts_its_orchestration_from_the_event_grid_blob_trigger(
    bindings: dict[str, list[dict[str, Any]]],
) -> None:
    blob = trigger(bindings, "import_blob")
    # The Event Grid source is the only one on the Flex Consumption plan; IMPORTS is an identity-based connection.
    assert (blob["type"], blob["path"], blob["connection"], blob["source"]) == (
        "blobTrigger",
        "imports/{name}",
        "IMPORTS",
        "EventGrid",
    )
    assert any(b["type"] == "durableClient" for b in bindings["import_blob"])
    assert trigger(bindings, "import_file")["type"] == "orchestrationTrigger"
    for name in ("import_chunk", "import_finish"):
        assert trigger(bindings, name)["type"] == "activityTrigger"


@pytest.mark.parametrize(
    ("name", "schedule"),
    [("forward_people_counter", "0 */15 * * * *"), ("forward_hourly_snapshot", "0 0 * * * *")],
)
def test_microshare_forwarders_run_on_their_fixed_schedules_and_catch_up_after_downtime(
    bindings: dict[str, list[dict[str, Any]]], name: str, schedule: str
) -> None:
    timer = trigger(bindings, name)

    assert timer["type"] == "timerTrigger"
    assert timer["schedule"] == schedule
    assert timer["useMonitor"] is True  # a run missed while the app was down happens at start
    assert timer["runOnStartup"] is False  # not on every scale-out or restart


def test_simulator_runs_on_a_configurable_timer(bindings: dict[str, list[dict[str, Any]]]) -> None:
    timer = trigger(bindings, "simulate_sensors")

    assert timer["type"] == "timerTrigger"
    assert timer["schedule"] == "%SIMULATOR_SCHEDULE%"
    assert timer["runOnStartup"] is True


@pytest.mark.parametrize(
    ("name", "schedule", "sample"),
    [
        ("evaluate_silences", "%ALERT_SILENCE_SCHEDULE%", "0 * * * * *"),
        ("send_alert_notifications", "%ALERT_SENDER_SCHEDULE%", "*/15 * * * * *"),
    ],
)
def test_the_alert_timers_run_on_configurable_schedules(
    bindings: dict[str, list[dict[str, Any]]], name: str, schedule: str, sample: str
) -> None:
    timer = trigger(bindings, name)

    assert timer["type"] == "timerTrigger"
    assert timer["schedule"] == schedule
    assert sample_settings()[schedule.strip("%")] == sample  # every minute; every 15 s


def test_readings_summariser_follows_the_readings_change_feed(bindings: dict[str, list[dict[str, Any]]]) -> None:
    feed = trigger(bindings, "summarise_readings")

    assert feed["type"] == "cosmosDBTrigger"
    assert feed["connection"] == "COSMOS"
    assert feed["databaseName"] == "%COSMOS_DATABASE_NAME%"
    assert feed["containerName"] == "readings"
    assert feed["leaseContainerName"] == "leases"
    assert feed["createLeaseContainerIfNotExists"] is True


def test_events_summariser_takes_event_hub_batches(bindings: dict[str, list[dict[str, Any]]]) -> None:
    hub = trigger(bindings, "summarise_events")

    assert hub["type"] == "eventHubTrigger"
    assert hub["connection"] == "EVENTHUB"
    assert hub["eventHubName"] == "%EVENTHUB_NAME%"
    assert str(hub["cardinality"]).lower() == "many"


def test_the_warmup_function_has_the_name_and_trigger_the_host_looks_for(
    bindings: dict[str, list[dict[str, Any]]],
) -> None:
    assert trigger(bindings, "warmup")["type"] == "warmupTrigger"
    assert [b["name"] for b in bindings["warmup"]] == ["warmup"]


@pytest.mark.parametrize(("name", "route"), sorted(HTTP_ROUTES.items()))
def test_http_functions_are_anonymous_gets_on_their_routes(
    bindings: dict[str, list[dict[str, Any]]], name: str, route: str
) -> None:
    http = trigger(bindings, name)

    assert http["type"] == "httpTrigger"
    assert http["route"] == route
    assert [m.upper() for m in http["methods"]] == ["GET"]
    assert str(http["authLevel"]).lower() == "anonymous"
    assert any(b["type"] == "http" and b["direction"] == "OUT" for b in bindings[name])


def test_every_setting_a_binding_names_is_in_the_sample_settings(bindings: dict[str, list[dict[str, Any]]]) -> None:
    named = {
        setting
        for function_bindings in bindings.values()
        for binding in function_bindings
        for value in binding.values()
        if isinstance(value, str)
        for setting in SETTING_EXPRESSION.findall(value)
    }
    connections = {
        binding["connection"]
        for function_bindings in bindings.values()
        for binding in function_bindings
        if "connection" in binding
    }

    # The expressions in use, so that this test notices when a new one appears.
    assert named >= {"SIMULATOR_SCHEDULE", "COSMOS_DATABASE_NAME", "EVENTHUB_NAME", "EVENTHUB_CONSUMER_GROUP"}
    assert sorted(named - sample_settings().keys()) == []
    assert [name for name in sorted(named) if not sample_settings()[name].strip()] == []
    assert sorted(connections - sample_settings().keys()) == []


def test_host_json_serves_http_functions_from_the_site_root() -> None:
    host = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))

    assert host["extensions"]["http"]["routePrefix"] == ""

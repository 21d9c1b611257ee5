"""Alerts on the dashboard's answers, over a temporary embedded store: a tile's alert badge (firing, pending or
none) and a sensor's alert history. Alert states are made by the app's own paths: a rule put through the rule
admin, readings summarised (thresholds are judged inside the summariser's batch), a rule deleted."""

from __future__ import annotations

import itertools
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import pytest

from shared.alerts.rules import parse_rule
from shared.app import services
from shared.dashboard.reader import SENSOR_ALERTS
from tests.component.conftest import Handler
from tests.component.series_rig import Element, parse_html, table_rows
from tests.component.test_dashboard_api import body_json, get


def put_rule(name: str, sensors: str, severity: str = "critical", for_summaries: int = 1, value: float = 0) -> None:
    body = {
        "kind": "threshold",
        "metric": "temperature",
        "sensors": sensors,
        "field": "avg",
        "op": ">",
        "value": value,
        "for_summaries": for_summaries,
        "severity": severity,
    }
    services().alert_admin.put(parse_rule(name, body))


_SECONDS = itertools.count()


def summarise(*sensors: str) -> None:
    """A new reading of each sensor (20 °C and up, a second after the last), summarised in one batch: one new
    summary per series."""
    second = next(_SECONDS)
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1) + timedelta(seconds=second)
    batch = [
        {
            "id": f"{sensor_id}-{second}",
            "sensor_id": sensor_id,
            "metric": "temperature",
            "value": 20.0 + second % 10,
            "unit": "°C",
            "timestamp": moment.isoformat(),
        }
        for sensor_id in sensors
    ]
    outcome = services().summariser.apply(batch, source="test")
    assert not outcome.dead_lettered, outcome
    services().alert_board.changed()  # the board's one-second cache, as if that time had passed


def tiles(handlers: dict[str, Handler], headers: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    answer = body_json(get(handlers["list_sensors"], "api/sensors", headers=headers))
    return {tile["sensor_id"]: tile for tile in answer["items"]}


@pytest.mark.usefixtures("app_on_temp_store")
def test_a_tile_shows_the_most_severe_firing_alert_and_how_many_fire(handlers: dict[str, Handler]) -> None:
    put_rule("room-warm", "room-*", severity="warning")
    put_rule("room-1-hot", "room-1", severity="critical")
    summarise("room-1", "room-2", "hall-1")

    listed = tiles(handlers)

    assert listed["room-1"]["alert"] == {"state": "firing", "severity": "critical", "name": "room-1-hot", "count": 2}
    assert listed["room-2"]["alert"] == {"state": "firing", "severity": "warning", "name": "room-warm", "count": 1}
    assert listed["hall-1"]["alert"] is None  # no rule watches it


@pytest.mark.usefixtures("app_on_temp_store")
def test_a_tile_is_pending_while_a_rule_waits_for_more_summaries(handlers: dict[str, Handler]) -> None:
    put_rule("room-warm", "room-*", severity="warning", for_summaries=3)
    summarise("room-1")

    pending = tiles(handlers)["room-1"]["alert"]
    summarise("room-1")
    summarise("room-1")  # the third breaching summary in a row

    assert pending == {"state": "pending", "severity": None, "name": None, "count": 0}
    assert tiles(handlers)["room-1"]["alert"] == {
        "state": "firing",
        "severity": "warning",
        "name": "room-warm",
        "count": 1,
    }


@pytest.mark.usefixtures("app_on_temp_store")
def test_a_tile_has_no_alert_while_nothing_breaches_and_none_once_the_rule_is_deleted(
    handlers: dict[str, Handler],
) -> None:
    put_rule("never", "room-*", value=1000)
    put_rule("always", "room-*")
    summarise("room-1")
    firing = tiles(handlers)["room-1"]["alert"]

    services().alert_admin.delete("always")
    services().alert_board.changed()

    assert firing is not None and firing["name"] == "always"
    assert tiles(handlers)["room-1"]["alert"] is None


@pytest.mark.usefixtures("app_on_temp_store")
def test_the_listing_etag_changes_when_an_alert_resolves_though_no_reading_came(handlers: dict[str, Handler]) -> None:
    put_rule("always", "room-*")
    summarise("room-1")
    first = get(handlers["list_sensors"], "api/sensors")
    etag = first.headers["ETag"]
    unchanged = get(handlers["list_sensors"], "api/sensors", headers={"If-None-Match": etag})

    services().alert_admin.delete("always")
    services().alert_board.changed()
    resolved = get(handlers["list_sensors"], "api/sensors", headers={"If-None-Match": etag})

    assert unchanged.status_code == 304
    assert resolved.status_code == 200 and resolved.headers["ETag"] != etag
    assert [tile["alert"] for tile in body_json(resolved)["items"]] == [None]


@pytest.mark.usefixtures("app_on_temp_store")
def test_the_first_page_inside_the_dashboard_page_carries_the_badges(handlers: dict[str, Handler]) -> None:
    put_rule("always", "room-1")
    summarise("room-1", "room-2")

    page = get(handlers["dashboard_page"], "").get_body().decode("utf-8")
    embedded = page.split('<script id="first-page" type="application/json">', 1)[1].split("</script>", 1)[0]

    assert '"alert":{"state":"firing","severity":"critical","name":"always","count":1}' in embedded
    assert '"alert":null' in embedded


def sensor_answer(handlers: dict[str, Handler], sensor_id: str) -> Any:
    return body_json(get(handlers["sensor_series"], f"api/sensors/{sensor_id}", {}, {"sensor_id": sensor_id}))


@pytest.mark.usefixtures("app_on_temp_store")
def test_a_sensors_answer_lists_its_alerts_firing_first_and_a_deleted_rules_alert_as_resolved(
    handlers: dict[str, Handler],
) -> None:
    put_rule("room-warm", "room-*", severity="warning")
    put_rule("room-1-hot", "room-1", severity="critical")
    summarise("room-1", "room-2")
    services().alert_admin.delete("room-1-hot")  # resolves what it fired
    services().alert_board.changed()

    answer = sensor_answer(handlers, "room-1")
    other = sensor_answer(handlers, "room-2")

    firing, resolved = answer["alerts"]
    assert (firing["name"], firing["status"], firing["severity"]) == ("room-warm", "firing", "warning")
    assert (firing["sensor_id"], firing["metric"], firing["source"]) == ("room-1", "temperature", "sensorpulse")
    assert firing["ends_at"] is None and firing["starts_at"].endswith("Z")
    assert firing["summary"].startswith("room-1 temperature avg ")
    assert (resolved["name"], resolved["status"], resolved["severity"]) == ("room-1-hot", "resolved", "critical")
    assert resolved["ends_at"] >= resolved["starts_at"] == firing["starts_at"]
    assert [a["name"] for a in other["alerts"]] == ["room-warm"]  # only the sensor's own
    assert [tile["alert"] for tile in answer["series"]] == [
        {"state": "firing", "severity": "warning", "name": "room-warm", "count": 1}
    ]


@pytest.mark.usefixtures("app_on_temp_store")
def test_a_sensor_without_alerts_says_so_with_an_empty_list(handlers: dict[str, Handler]) -> None:
    put_rule("room-warm", "room-*")
    summarise("hall-1")

    answer = sensor_answer(handlers, "hall-1")

    assert answer["alerts"] == []
    assert [tile["alert"] for tile in answer["series"]] == [None]


@pytest.mark.usefixtures("app_on_temp_store")
def test_a_sensors_answer_holds_its_newest_twenty_alerts(handlers: dict[str, Handler]) -> None:
    for n in range(SENSOR_ALERTS + 1):
        put_rule(f"rule-{n:02d}", "room-1")
    summarise("room-1")

    answer = sensor_answer(handlers, "room-1")

    assert len(answer["alerts"]) == SENSOR_ALERTS
    assert {a["status"] for a in answer["alerts"]} == {"firing"}
    assert answer["series"][0]["alert"]["count"] == SENSOR_ALERTS + 1  # the badge counts them all


HOSTILE = "</script><script>alert(1)</script>&amp;"


def receive(handlers: dict[str, Handler], alerts: list[dict[str, Any]]) -> None:
    """Alerts as Alertmanager posts them to the inbound webhook."""
    body = {"version": "4", "status": "firing", "receiver": "sensor-pulse", "alerts": alerts}
    request = func.HttpRequest(
        method="POST",
        url="http://localhost/api/alerts/inbound",
        headers={"Content-Type": "application/json"},
        params={},
        route_params={},
        body=json.dumps(body).encode(),
    )
    assert handlers["receive_alerts"](request).status_code == 202


def embedded_alerts(html: str) -> Any:
    """The firing alerts a page carries for its banner's first paint."""
    return json.loads(html.split('<script id="first-alerts" type="application/json">', 1)[1].split("</script>", 1)[0])


@pytest.mark.usefixtures("app_on_temp_store")
def test_both_pages_carry_the_firing_alerts_for_the_banner_and_hostile_text_stays_data(
    handlers: dict[str, Handler],
) -> None:
    put_rule("always", "room-1")
    summarise("room-1")
    hostile = {
        "status": "firing",
        "labels": {"alertname": "GatewayDown", "severity": "critical", "sensor_id": "room-1"},
        "annotations": {"summary": HOSTILE},
        "startsAt": "2026-03-01T11:52:26.739266876+01:00",
        "endsAt": "0001-01-01T00:00:00Z",
    }
    receive(handlers, [hostile])

    fleet = get(handlers["dashboard_page"], "").get_body().decode("utf-8")
    series = get(handlers["series_page"], "sensors/room-1", {}, {"sensor_id": "room-1"}).get_body().decode("utf-8")

    for html in (fleet, series):
        firing = embedded_alerts(html)
        assert (firing["total"], firing["firing"]) == (2, 2)
        assert {a["name"]: a["source"] for a in firing["items"]} == {
            "always": "sensorpulse",
            "GatewayDown": "alertmanager",
        }
        assert HOSTILE in [a["summary"] for a in firing["items"]]
        assert "<script>alert(1)" not in html
        assert html.count('<section id="alerts"') == 1
        head, body = html.split("</head>", 1)
        assert ".sev-critical" in head and "<style" not in body  # the banner's style sits in the head
    assert 'data-base=""' in fleet and 'data-base="../"' in series  # the banner's links and polls from each page


@pytest.mark.usefixtures("app_on_temp_store")
def test_with_nothing_firing_the_banner_comes_hidden_and_empty(handlers: dict[str, Handler]) -> None:
    summarise("room-1")

    fleet = get(handlers["dashboard_page"], "").get_body().decode("utf-8")

    assert embedded_alerts(fleet) == {"items": [], "next_cursor": None, "total": 0, "firing": 0}
    assert '<section id="alerts" aria-labelledby="alerts-heading"' in fleet
    banner = fleet.split('<section id="alerts"', 1)[1].split(">", 1)[0]
    assert banner.endswith(" hidden")


def series_page(handlers: dict[str, Handler], sensor_id: str) -> Element:
    response = get(handlers["series_page"], f"sensors/{sensor_id}", {}, {"sensor_id": sensor_id})
    assert response.status_code == 200
    return parse_html(response.get_body().decode("utf-8")).one("section", id="alert-history")


@pytest.mark.usefixtures("app_on_temp_store")
def test_the_series_page_lists_the_sensors_alerts_firing_first_with_their_times(handlers: dict[str, Handler]) -> None:
    put_rule("room-warm", "room-*", severity="warning")
    put_rule("room-1-hot", "room-1", severity="critical")
    summarise("room-1")
    services().alert_admin.delete("room-1-hot")
    services().alert_board.changed()
    listed = sensor_answer(handlers, "room-1")["alerts"]

    history = series_page(handlers, "room-1")

    assert history.one("h2").text() == "Alerts"
    assert "hidden" in history.one("p", class_="no-alerts").attrs
    assert "hidden" not in history.one("table", class_="alerts").attrs
    rows = table_rows(history.one("table", class_="alerts"))
    firing, resolved = rows
    assert firing[:4] == ["room-warm", "warning", "firing", listed[0]["summary"]]
    assert firing[4] == listed[0]["starts_at"][:19].replace("T", " ")  # UTC, as the other tables
    assert firing[5] == "firing"
    assert re.fullmatch(r"\d+ (s|min)", firing[6]), firing[6]
    assert resolved[:3] == ["room-1-hot", "critical", "resolved"]
    assert resolved[5] == listed[1]["ends_at"][:19].replace("T", " ")
    assert re.fullmatch(r"\d+ (s|min)", resolved[6]), resolved[6]
    duration = history.all("td", class_="duration")
    assert [td.attrs.get("data-since") for td in duration] == [listed[0]["starts_at"], None]  # the live one ticks


@pytest.mark.usefixtures("app_on_temp_store")
def test_the_series_page_of_a_sensor_without_alerts_says_so(handlers: dict[str, Handler]) -> None:
    summarise("hall-1")

    history = series_page(handlers, "hall-1")

    assert history.one("p", class_="no-alerts").text() == "No alerts recorded for hall-1."
    assert "hidden" not in history.one("p", class_="no-alerts").attrs
    assert "hidden" in history.one("table", class_="alerts").attrs
    assert table_rows(history.one("table", class_="alerts")) == []


@pytest.mark.usefixtures("app_on_temp_store")
def test_a_received_alerts_text_is_shown_in_the_history_as_text(handlers: dict[str, Handler]) -> None:
    summarise("room-1")
    receive(
        handlers,
        [
            {
                "status": "firing",
                "labels": {"alertname": "<b>Gateway</b>", "severity": "info", "sensor_id": "room-1"},
                "annotations": {"summary": HOSTILE},
                "startsAt": "2026-03-01T11:52:26.739266876+01:00",
                "endsAt": "0001-01-01T00:00:00Z",
            }
        ],
    )

    response = get(handlers["series_page"], "sensors/room-1", {}, {"sensor_id": "room-1"})
    text = response.get_body().decode("utf-8")
    (row,) = table_rows(parse_html(text).one("section", id="alert-history").one("table", class_="alerts"))

    assert "<b>Gateway" not in text and "<script>alert(1)" not in text
    assert row[:5] == ["<b>Gateway</b> from alertmanager", "info", "firing", HOSTILE, "2026-03-01 10:52:26"]

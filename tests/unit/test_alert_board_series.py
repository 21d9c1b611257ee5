"""What the dashboard asks the alert board per series: a tile's badge and a sensor's history, looked up in the
indexes one read of the board builds (not a scan of every alert per tile)."""

from __future__ import annotations

from typing import Any

from shared.alerts.board import Board


def alert(
    name: str,
    status: str = "firing",
    severity: str = "warning",
    sensor_id: str | None = "s1",
    metric: str | None = "temperature",
) -> dict[str, Any]:
    return {
        "fingerprint": name,
        "status": status,
        "name": name,
        "severity": severity,
        "sensor_id": sensor_id,
        "metric": metric,
    }


def test_a_series_badge_is_its_most_severe_firing_alert_with_how_many_fire() -> None:
    # In the board's order: firing first, newest first.
    board = Board(
        [
            alert("newest-warning"),
            alert("critical-one", severity="critical"),
            alert("older-critical", severity="critical"),
            alert("on-humidity", severity="critical", metric="humidity"),
            alert("resolved-critical", status="resolved", severity="critical"),
        ],
        {},
    )

    assert board.series_status("s1", "temperature") == {
        "state": "firing",
        "severity": "critical",
        "name": "critical-one",  # the newest of the most severe
        "count": 3,
    }
    assert board.series_status("s1", "humidity") == {
        "state": "firing",
        "severity": "critical",
        "name": "on-humidity",
        "count": 1,
    }


def test_a_series_with_only_pending_rules_is_pending_and_a_quiet_one_has_no_badge() -> None:
    board = Board([alert("over", status="resolved")], {("s1", "temperature"): 2})

    assert board.series_status("s1", "temperature") == {"state": "pending", "severity": None, "name": None, "count": 0}
    assert board.series_status("s2", "temperature") is None
    assert board.series_status("s1", "humidity") is None


def test_firing_beats_pending_and_a_badge_handed_out_cannot_change_the_board() -> None:
    board = Board([alert("hot")], {("s1", "temperature"): 1})

    badge = board.series_status("s1", "temperature")
    assert badge is not None and badge["state"] == "firing"
    badge["count"] = 99

    assert board.series_status("s1", "temperature") == {
        "state": "firing",
        "severity": "warning",
        "name": "hot",
        "count": 1,
    }


def test_an_alert_without_a_sensor_or_metric_label_badges_no_tile() -> None:
    board = Board([alert("platform", sensor_id=None, metric=None), alert("sensor-wide", metric=None)], {})

    assert board.firing_by_series == {}
    assert [a["name"] for a in board.series_history("s1")] == ["sensor-wide"]


def test_a_sensors_history_keeps_the_boards_order_across_metrics_and_stops_at_the_limit() -> None:
    board = Board(
        [
            alert("a"),
            alert("b", sensor_id="s2"),
            alert("c", metric="humidity"),
            alert("d", status="resolved"),
            alert("e", status="resolved", metric="humidity"),
        ],
        {},
    )

    assert [a["name"] for a in board.series_history("s1")] == ["a", "c", "d", "e"]
    assert [a["name"] for a in board.series_history("s1", limit=2)] == ["a", "c"]
    assert board.series_history("s3") == []

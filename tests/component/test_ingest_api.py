"""POST /api/readings and GET /api/sensors/{sensor_id}/readings, called as the host calls them, over a temporary
embedded store: what is written, what is refused, and that a refused request writes nothing."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from shared.app import Services, install, services
from shared.storage.names import READINGS
from shared.storage.sqlite.database import SqliteDatabase
from shared.storage.sqlite.documents import SqliteDocumentStore
from tests.component.conftest import Handler, listed_series

pytestmark = pytest.mark.usefixtures("app_on_temp_store")


def reading(sensor_id: str, seconds_ago: int, value: float, **extra: Any) -> dict[str, Any]:
    moment = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    return {"sensor_id": sensor_id, "metric": "temperature", "value": value, "timestamp": moment.isoformat(), **extra}


def post(handlers: dict[str, Handler], body: bytes, content_type: str | None = "application/json") -> func.HttpResponse:
    headers = {} if content_type is None else {"Content-Type": content_type}
    request = func.HttpRequest(
        method="POST", url="http://localhost/api/readings", headers=headers, params={}, route_params={}, body=body
    )
    return handlers["post_readings"](request)


def post_json(handlers: dict[str, Handler], payload: object) -> tuple[int, Any]:
    response = post(handlers, json.dumps(payload).encode())
    assert response.mimetype == "application/json"
    return response.status_code, json.loads(response.get_body())


def latest(handlers: dict[str, Handler], sensor_id: str, **params: str) -> tuple[int, Any]:
    request = func.HttpRequest(
        method="GET",
        url=f"http://localhost/api/sensors/{sensor_id}/readings",
        headers={},
        params=params,
        route_params={"sensor_id": sensor_id},
        body=b"",
    )
    response = handlers["list_readings"](request)
    return response.status_code, json.loads(response.get_body())


def stored(data_dir: Path) -> int:
    database = SqliteDatabase.in_directory(data_dir)
    try:
        return SqliteDocumentStore(database).count(READINGS)
    finally:
        database.close()


def test_a_batch_is_written_and_read_back_newest_first(handlers: dict[str, Handler], app_on_temp_store: Path) -> None:
    batch = [reading("boiler-7", 30 - n, 20.0 + n, id=f"boiler-7:{n}") for n in range(5)]
    status, body = post_json(handlers, batch)
    assert status == 201
    assert body["count"] == 5 and body["ids"] == [f"boiler-7:{n}" for n in range(5)]

    status, readings = latest(handlers, "boiler-7", limit="3")
    assert status == 200
    assert [r["id"] for r in readings] == ["boiler-7:4", "boiler-7:3", "boiler-7:2"]
    assert readings[0]["unit"] == "°C" and readings[0]["source"] == "ingest-api"
    assert "ttl" not in readings[0] and not any(key.startswith("_") for key in readings[0])
    assert stored(app_on_temp_store) == 5


def test_a_single_reading_object_is_accepted(handlers: dict[str, Handler]) -> None:
    status, body = post_json(handlers, reading("boiler-7", 1, 22.0))
    assert status == 201 and body["count"] == 1


def test_a_retried_post_succeeds_and_writes_nothing_again(
    handlers: dict[str, Handler], app_on_temp_store: Path
) -> None:
    batch = [reading("boiler-7", 10, 20.0), reading("boiler-7", 5, 21.0, id="client-chosen-1")]
    first = post_json(handlers, batch)
    written = services().stores.documents.read_changes(READINGS, None, 10).documents
    second = post_json(handlers, batch)
    assert (first[0], first[1]["ids"]) == (second[0], second[1]["ids"]) == (201, first[1]["ids"])
    assert stored(app_on_temp_store) == 2
    # Not rewritten: the same documents, with the same system fields (a write would give them a new _lsn and _etag).
    assert services().stores.documents.read_changes(READINGS, None, 10).documents == written


def test_a_reading_from_1970_is_refused_naming_the_timestamp(
    handlers: dict[str, Handler], app_on_temp_store: Path
) -> None:
    status, body = post_json(
        handlers, [reading("boiler-7", 5, 20.0), {**reading("boiler-7", 0, 21.0), "timestamp": "1970-01-01T00:00:00Z"}]
    )
    assert status == 400
    assert body["errors"] == [{"index": 1, "field": "timestamp", "message": "must be at most 604800 s old"}]
    assert stored(app_on_temp_store) == 0


def test_the_max_age_comes_from_the_setting(handlers: dict[str, Handler], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("READING_MAX_AGE_SECONDS", "60")
    install(Services.from_env(os.environ))
    status, body = post_json(handlers, [reading("a", 30, 1.0), reading("a", 120, 2.0)])
    assert status == 400
    assert body["errors"] == [{"index": 1, "field": "timestamp", "message": "must be at most 60 s old"}]


def summarise_the_change_feed() -> None:
    """What the change-feed trigger does with everything written so far."""
    changes = services().stores.documents.read_changes(READINGS, None, 1000)
    services().batches.summarise_documents(changes.documents, received_at=datetime.now(UTC))


def test_a_reading_id_posted_again_with_another_value_is_a_409_and_nothing_changes(
    handlers: dict[str, Handler], app_on_temp_store: Path
) -> None:
    first = reading("boiler-7", 10, 20.0, id="boiler-7:0001")
    assert post_json(handlers, first)[0] == 201
    summarise_the_change_feed()
    (series,) = listed_series()

    newer = reading("boiler-7", 5, 22.0, id="boiler-7:0002")
    status, body = post_json(handlers, [newer, {**first, "value": 25.0}])

    assert status == 409
    assert body["ids"] == ["boiler-7:0001"]
    assert "boiler-7:0001" in body["error"] and "nothing was written" in body["error"]
    assert [r["value"] for r in latest(handlers, "boiler-7")[1]] == [20.0]  # neither the new value nor the other
    summarise_the_change_feed()
    (after,) = listed_series()
    assert after["latest"] == series["latest"]  # the summary still has the first value, and only it


def test_the_same_reading_from_another_source_is_taken_and_changes_nothing(handlers: dict[str, Handler]) -> None:
    first = reading("boiler-7", 10, 20.0, id="boiler-7:0001", source="gateway-1")
    assert post_json(handlers, first)[0] == 201

    status, body = post_json(handlers, {**first, "source": "gateway-2"})

    assert (status, body["ids"]) == (201, ["boiler-7:0001"])
    assert [r["source"] for r in latest(handlers, "boiler-7")[1]] == ["gateway-1"]


def test_one_invalid_reading_refuses_the_batch_and_writes_nothing(
    handlers: dict[str, Handler], app_on_temp_store: Path
) -> None:
    batch = [reading("boiler-7", 10, 20.0), reading("boiler-7", 5, float("nan")), reading("boiler 8", 1, 3.0)]
    response = post(handlers, json.dumps(batch).replace("NaN", '"NaN"').encode())
    body = json.loads(response.get_body())
    assert response.status_code == 400
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(1, "value"), (2, "sensor_id")]
    assert stored(app_on_temp_store) == 0


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b'{"sensor_id": "x"}', "text/plain", 415),
        (b'{"sensor_id": "x"}', None, 415),
        (b"[" + b" " * (300 * 1024) + b"]", "application/json", 413),
        (b"[" * 100_000, "application/json", 400),
        (b"\x00\x01\x02", "application/json", 400),
    ],
)
def test_bodies_that_cannot_be_readings_are_refused_with_a_json_reason(
    handlers: dict[str, Handler], app_on_temp_store: Path, body: bytes, content_type: str | None, status: int
) -> None:
    response = post(handlers, body, content_type)
    assert response.status_code == status
    assert json.loads(response.get_body())["error"]
    assert stored(app_on_temp_store) == 0


def test_the_batch_limit_comes_from_the_setting(handlers: dict[str, Handler], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_MAX_BATCH", "2")
    install(Services.from_env(os.environ))  # the app as started with that setting
    status, body = post_json(handlers, [reading("a", 3, 1.0), reading("a", 2, 2.0), reading("a", 1, 3.0)])
    assert status == 400 and "at most 2" in body["error"]


def test_posted_readings_are_summarised_from_the_change_feed(handlers: dict[str, Handler]) -> None:
    post_json(handlers, [reading("boiler-7", 10 - n, float(n)) for n in range(7)])
    changes = services().stores.documents.read_changes(READINGS, None, 100)
    services().summariser.apply(list(changes.documents), source="cosmos-readings")
    (series,) = listed_series()
    assert (series["sensor_id"], series["latest"]["count"], series["latest"]["max"]) == ("boiler-7", 5, 6.0)


@pytest.mark.parametrize(
    ("sensor_id", "params", "status"),
    [
        ("nobody", {}, 404),
        ("../../etc", {}, 400),
        ("boiler-7", {"limit": "0"}, 400),
        ("boiler-7", {"limit": "501"}, 400),
        ("boiler-7", {"limit": "²"}, 400),
        ("boiler-7", {"metric": "Temp"}, 400),
    ],
)
def test_reading_back_refuses_bad_parameters_and_unknown_sensors(
    handlers: dict[str, Handler], sensor_id: str, params: dict[str, str], status: int
) -> None:
    post_json(handlers, reading("boiler-7", 1, 20.0))
    code, body = latest(handlers, sensor_id, **params)
    assert code == status and body["error"]

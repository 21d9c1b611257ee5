"""devhost --backend azure: the same app on the Azure adapters, here Azurite (Tables) and the Cosmos stand-in.

The stand-in has no incremental change feed: it answers every feed read with the whole container, so the
summariser sees each reading many times. That it still ends with one summary per window is the
idempotence the design promises, observed on the Azure adapters."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.cosmos import CosmosClient
from azure.cosmos.exceptions import CosmosResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from shared.storage.azure.clients import COSMOS_RETRY
from tests.e2e.devhost_process import DevhostProcess
from tests.emulators import Emulator
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SENSORS = 2


@pytest.fixture
def database_name() -> str:
    return f"e2e-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def host(tmp_path: Path, azurite: Emulator, cosmos_stand_in: Emulator, database_name: str) -> Iterator[DevhostProcess]:
    settings = {
        "COSMOS": f"AccountEndpoint={cosmos_stand_in.extra['endpoint']};AccountKey={cosmos_stand_in.extra['key']};",
        "COSMOS_DATABASE_NAME": database_name,
        "STATE": azurite.extra["connection_string"],
        "IMPORTS": azurite.extra["blob_connection_string"],
        "SENSOR_COUNT": str(SENSORS),
        "SIMULATOR_SCHEDULE": "*/1 * * * * *",
    }
    process = DevhostProcess(tmp_path, settings, extra_args=["--backend", "azure"])
    try:
        yield process
    finally:
        process.kill()


def test_devhost_on_the_azure_adapters_stores_readings_in_cosmos_and_serves_summaries(
    host: DevhostProcess, cosmos_stand_in: Emulator, database_name: str
) -> None:
    client = CosmosClient(
        cosmos_stand_in.extra["endpoint"],
        credential=cosmos_stand_in.extra["key"],
        connection_verify=False,
        **COSMOS_RETRY,
    )
    readings = client.get_database_client(database_name).get_container_client("readings")

    def sensors_in_cosmos() -> set[str] | None:
        try:
            query = readings.query_items("SELECT c.sensor_id FROM c", enable_cross_partition_query=True)
            found = {str(doc["sensor_id"]) for doc in query}
        except CosmosResourceNotFoundError:  # devhost creates the database and containers on first use
            return None
        return found if len(found) == SENSORS else None

    assert wait_for(sensors_in_cosmos, 60, "simulated readings in Cosmos") == {
        f"sensor-{n:02d}" for n in range(1, SENSORS + 1)
    }

    def summarised() -> list[dict[str, Any]] | None:
        series: list[dict[str, Any]] = host.get_json("/api/sensors")["items"]
        return series if len([s for s in series if s["latest"]]) == SENSORS else None

    series = wait_for(summarised, 60, "a summary for every sensor, from the window state in Azurite")
    latest = series[0]["latest"]
    summaries = client.get_database_client(database_name).get_container_client("summaries")

    def stored_summary() -> dict[str, Any] | None:
        # The window state is written first and the summary just after it (shared/readings/summariser.py).
        try:
            return dict(summaries.read_item(latest["id"], partition_key=series[0]["sensor_id"]))
        except CosmosResourceNotFoundError:
            return None

    summary = wait_for(stored_summary, 30, "the latest summary in the summaries container")
    assert summary["count"] == latest["count"] >= 1
    assert host.get_json("/api/health")["status"] == "ok"
    assert "backend: azure" in "".join(host.output)


def test_a_file_uploaded_through_the_app_lands_in_azurite_and_is_imported_by_its_blob_created_event(
    host: DevhostProcess, azurite: Emulator
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    rows = [f"az-import,humidity,{40 + n},{(now - timedelta(seconds=30 - n)).isoformat()}" for n in range(20)]
    body = ("sensor_id,metric,value,timestamp\n" + "\n".join(rows) + "\nbad row\n").encode()
    status, answer = host.send("POST", "/api/imports?name=azure.csv", body, "text/csv")
    assert status == 202, answer
    uploaded = json.loads(answer)

    def ended() -> dict[str, Any] | None:
        current: dict[str, Any] = host.get_json(f"/api/imports/{uploaded['id']}")
        return current if current["state"] in ("imported", "refused", "failed") else None

    done = wait_for(ended, 120, "the import of the file devhost put into Azurite")
    assert (done["state"], done["rows"], done["imported"], done["rejected"]) == ("imported", 21, 20, 1)
    assert host.get_json("/api/sensors/az-import/readings?limit=1")[0]["value"] == 59
    service = BlobServiceClient.from_connection_string(azurite.extra["blob_connection_string"])
    stored = service.get_blob_client("imports", "azure.csv").get_blob_properties()
    assert stored.size == len(body)
    results = service.get_container_client("imports-results")
    result = json.loads(results.download_blob("azure.csv.result.json").readall())
    assert (result["imported"], result["rejected"]) == (20, 1)
    report = results.download_blob("azure.csv.errors.csv").readall().decode()
    assert report.splitlines()[1].startswith("22,")  # the header is line 1: the bad row is line 22

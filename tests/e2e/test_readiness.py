"""GET /api/ready as a load balancer or an operator meets it: 200 while every backend answers, 503 naming
the backend that went down, and 200 again once it is back, without restarting the app. devhost runs on the
Azure adapters: Azurite for Table Storage and the Cosmos stand-in for documents. (That the probe answers within
its deadline whatever a backend does is shown in tests/unit/test_readiness.py, with a backend that hangs.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.devhost_process import DevhostProcess
from tests.emulators import Emulator, EmulatorUnavailable, emulators_required, start_azurite
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture
def own_azurite() -> Iterator[list[Emulator]]:
    """An Azurite of this test's own, which it stops and starts again; the list holds the running one."""
    try:
        running = [start_azurite()]
    except EmulatorUnavailable as error:
        if emulators_required():
            raise
        pytest.skip(f"emulator not available: {error}")
    try:
        yield running
    finally:
        for emulator in running:
            emulator.stop()


def readiness(host: DevhostProcess) -> tuple[int, dict[str, Any]]:
    status, _, body = host.get("/api/ready")
    return status, json.loads(body)


def test_ready_names_the_backend_that_is_down_and_recovers_by_itself(
    tmp_path: Path, own_azurite: list[Emulator], cosmos_stand_in: Emulator
) -> None:
    azurite = own_azurite[0]
    settings = {
        "COSMOS": f"AccountEndpoint={cosmos_stand_in.extra['endpoint']};AccountKey={cosmos_stand_in.extra['key']};",
        "COSMOS_DATABASE_NAME": f"ready-{tmp_path.name[-8:]}",
        "STATE": azurite.extra["connection_string"],
        "AzureWebJobs.simulate_sensors.Disabled": "true",
        "EVENTHUB": "",  # no Event Hubs namespace here (the sample settings name an emulator)
    }
    host = DevhostProcess(tmp_path, settings, extra_args=["--backend", "azure"])
    try:

        def ready() -> dict[str, Any] | None:
            status, body = readiness(host)
            return body if status == 200 else None

        body = wait_for(ready, 60, "ready with both emulators up")
        assert body["checks"]["documents"]["status"] == "ok"
        assert body["checks"]["state"]["status"] == "ok"
        # No Event Hubs namespace is configured here: reported, and not a reason to refuse traffic.
        assert body["checks"]["eventhub:telemetry"]["status"] == "not configured"

        azurite.stop()
        own_azurite.clear()
        status, body = readiness(host)
        assert status == 503
        assert body["status"] == "not ready"
        assert body["failed"] == ["state"]
        assert body["checks"]["state"]["status"] == "failed"
        assert "Error" in body["checks"]["state"]["error"]  # the exception's type, never its message
        assert body["checks"]["documents"]["status"] == "ok"
        status, _, _ = host.get("/api/health")
        assert status == 200  # liveness does not touch the backends

        own_azurite.append(start_azurite(port=azurite.port))
        body = wait_for(ready, 60, "ready again once Table Storage is back")
        assert body["status"] == "ready"
    finally:
        host.kill()
    output = "".join(host.output)
    assert cosmos_stand_in.extra["key"] not in output

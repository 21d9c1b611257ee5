"""`python -m devhost --require-keys` with the real app, as an operator meets it: the dashboard stays open, the
Microshare backfill and the admin routes take their keys, the management URLs work with the key they carry, the
keys stay in their 0600 file and never show in devhost's output; without the flag nothing asks for a key."""

from __future__ import annotations

import json
import stat
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devhost.http.host_keys import FUNCTION_KEY_VARIABLE, KEY_HEADER, KEYS_FILE
from devhost.standins.microshare.dataset import MicroshareDataset
from devhost.standins.microshare.server import MicroshareStandIn
from tests.e2e.devhost_process import DevhostProcess
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

DAYS = 2
BACKFILL = "/api/microshare/backfill"
STATUS = "/api/microshare/backfill/backfill-people-counter"
Answer = tuple[int, dict[str, str], bytes]


def _day_start() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=DAYS + 1)


@pytest.fixture(scope="module")
def standin() -> Iterator[MicroshareStandIn]:
    start = _day_start()
    dataset = MicroshareDataset.synthetic(start, start + timedelta(days=DAYS), ("Building A",), 1)
    with MicroshareStandIn(dataset) as server:
        yield server


def _settings(standin: MicroshareStandIn) -> dict[str, str]:
    return {
        "SENSOR_COUNT": "1",
        **standin.app_settings(),
        "AzureWebJobs.forward_people_counter.Disabled": "true",
        "AzureWebJobs.forward_hourly_snapshot.Disabled": "true",
    }


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="module")
def keyed(standin: MicroshareStandIn, data_dir: Path) -> Iterator[DevhostProcess]:
    host = DevhostProcess(data_dir, _settings(standin), extra_args=["--require-keys", "--verbose"])
    try:
        yield host
    finally:
        host.stop()


def keys(data_dir: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((data_dir / KEYS_FILE).read_text())
    return document


def call(
    host: DevhostProcess, method: str, path: str, body: object = None, headers: Mapping[str, str] | None = None
) -> Answer:
    url = path if path.startswith("http") else host.base_url + path
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url.replace("//localhost:", "//127.0.0.1:"), data=data, method=method)
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def with_code(path: str, key: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}code={urllib.parse.quote(key, safe='')}"


def backfill_body() -> dict[str, str]:
    start = _day_start()
    return {"recType": "people_counter", "from": start.isoformat(), "to": (start + timedelta(days=DAYS)).isoformat()}


def backfill_status(host: DevhostProcess, key: str) -> dict[str, Any] | None:
    """The app's own status route for the backfill; None while there is none."""
    status, _, body = call(host, "GET", with_code(STATUS, key))
    if status == 404:
        return None
    assert status == 200, (status, body[:200])
    document: dict[str, Any] = json.loads(body)
    return document


def completed_backfill(host: DevhostProcess, key: str) -> dict[str, Any] | None:
    current = backfill_status(host, key)
    return current if current is not None and current["runtimeStatus"] == "Completed" else None


def backfill_idle(host: DevhostProcess, key: str) -> bool:
    current = backfill_status(host, key)
    return current is None or current["runtimeStatus"] in ("Completed", "Failed", "Terminated")


def test_startup_says_keys_are_required_and_where_the_0600_key_file_is(keyed: DevhostProcess, data_dir: Path) -> None:
    output = "".join(keyed.output)
    path = (data_dir / KEYS_FILE).resolve()
    assert "Keys: required (--require-keys)" in output
    assert str(path) in output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(keys(data_dir)) == {"masterKey", "functionKeys", "systemKeys"}


def test_the_dashboard_routes_stay_anonymous(keyed: DevhostProcess) -> None:
    for path in ("/", "/api/health", "/api/sensors", "/api/devices"):
        assert call(keyed, "GET", path)[0] == 200, path


def test_the_backfill_takes_the_function_key_in_the_code_parameter_or_the_header(
    keyed: DevhostProcess, data_dir: Path
) -> None:
    function_key = keys(data_dir)["functionKeys"]["default"]
    assert call(keyed, "POST", BACKFILL, backfill_body())[:3:2] == (401, b"")
    assert call(keyed, "POST", with_code(BACKFILL, "not-the-key"), backfill_body())[:3:2] == (401, b"")
    assert call(keyed, "POST", BACKFILL, backfill_body(), {KEY_HEADER: "not-the-key"})[0] == 401
    assert call(keyed, "GET", STATUS)[0] == 401
    status, _, body = call(keyed, "POST", with_code(BACKFILL, function_key), backfill_body())
    assert status == 202, body
    # The same request by header: past the key check, the app answers that this backfill is running (or done).
    status, _, body = call(keyed, "POST", BACKFILL, backfill_body(), {KEY_HEADER: function_key})
    assert status in (202, 409), body
    done = wait_for(lambda: completed_backfill(keyed, function_key), 120, "the backfill to complete")
    assert done["result"]["windows"] == DAYS


def test_the_management_urls_work_with_the_key_they_carry_and_not_without(
    keyed: DevhostProcess, data_dir: Path
) -> None:
    found = keys(data_dir)
    wait_for(lambda: backfill_idle(keyed, found["masterKey"]), 120, "no backfill to be running")
    status, _, body = call(keyed, "POST", BACKFILL, backfill_body(), {KEY_HEADER: found["masterKey"]})
    assert status == 202, body  # the master key opens function routes too
    status_url = json.loads(body)["management"]["statusQueryGetUri"]
    assert f"code={found['systemKeys']['durabletask_extension']}" in status_url
    assert call(keyed, "GET", status_url)[0] in (200, 202)
    bare = status_url.split("&code=")[0]
    assert call(keyed, "GET", bare)[0] == 401
    assert call(keyed, "GET", with_code(bare, found["functionKeys"]["default"]))[0] == 401
    assert call(keyed, "GET", with_code(bare, found["masterKey"]))[0] in (200, 202)


def test_running_a_timer_now_takes_the_master_key(keyed: DevhostProcess, data_dir: Path) -> None:
    found = keys(data_dir)
    path = "/admin/functions/simulate_sensors"
    assert call(keyed, "POST", path, {})[:3:2] == (401, b"")
    assert call(keyed, "POST", path, {}, {KEY_HEADER: found["functionKeys"]["default"]})[0] == 401
    assert call(keyed, "POST", with_code(path, found["systemKeys"]["durabletask_extension"]), {})[0] == 401
    assert call(keyed, "POST", path, {}, {KEY_HEADER: found["masterKey"]})[0] == 202


def test_event_grid_s_blob_webhook_takes_the_blobs_extension_key(keyed: DevhostProcess, data_dir: Path) -> None:
    found = keys(data_dir)
    path = "/runtime/webhooks/blobs?functionName=Host.Functions.import_blob"
    handshake = [{"eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "data": {"validationCode": "c1"}}]
    validation = {"aeg-event-type": "SubscriptionValidation"}
    assert call(keyed, "POST", path, handshake, validation)[0] == 401
    assert call(keyed, "POST", with_code(path, found["functionKeys"]["default"]), handshake, validation)[0] == 401
    status, _, body = call(
        keyed, "POST", with_code(path, found["systemKeys"]["blobs_extension"]), handshake, validation
    )
    assert (status, json.loads(body)) == (200, {"validationResponse": "c1"})


def test_no_key_shows_in_devhosts_output(keyed: DevhostProcess, data_dir: Path) -> None:
    """Last in this module: every request above (some with ?code= in the URL) has been logged by then."""
    found = keys(data_dir)
    output = "".join(keyed.output)
    assert "code=***" in output  # --verbose logs request lines, with the key masked
    system = found["systemKeys"]
    for key in (found["masterKey"], found["functionKeys"]["default"], *system.values()):
        assert key not in output and urllib.parse.quote(key, safe="") not in output


def test_a_restart_reuses_the_keys_and_an_environment_key_replaces_the_files(
    standin: MicroshareStandIn, tmp_path: Path
) -> None:
    first = DevhostProcess(tmp_path, _settings(standin), extra_args=["--require-keys"])
    first.stop()
    before = (tmp_path / KEYS_FILE).read_text()
    scripted = "scripted-function-key-for-this-test"
    second = DevhostProcess(
        tmp_path, {**_settings(standin), FUNCTION_KEY_VARIABLE: scripted}, extra_args=["--require-keys"]
    )
    try:
        assert call(second, "GET", with_code(STATUS, scripted))[0] == 404  # past the key check: no backfill yet
        old_key = json.loads(before)["functionKeys"]["default"]
        assert call(second, "GET", with_code(STATUS, old_key))[0] == 401
        master = json.loads(before)["masterKey"]
        assert call(second, "POST", "/admin/functions/simulate_sensors", {}, {KEY_HEADER: master})[0] == 202
    finally:
        second.stop()
    assert (tmp_path / KEYS_FILE).read_text() == before
    output = "".join(second.output)
    assert f"default function key: from {FUNCTION_KEY_VARIABLE}" in output and scripted not in output


def test_without_the_flag_nothing_asks_for_a_key(standin: MicroshareStandIn, tmp_path: Path) -> None:
    host = DevhostProcess(tmp_path, _settings(standin))
    try:
        assert call(host, "GET", STATUS)[0] == 404  # the function ran: no backfill of that id yet
        assert call(host, "POST", "/admin/functions/simulate_sensors", {})[0] == 202
        assert call(host, "GET", "/runtime/webhooks/durabletask/instances")[0] == 200
    finally:
        host.stop()
    assert not (tmp_path / KEYS_FILE).exists()
    assert "Keys: required" not in "".join(host.output)

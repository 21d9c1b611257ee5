"""`devhost --require-keys`: the key file, the levels each key opens, and the Durable API's keyed URLs, on
tests/devhost/durable_app run in this process."""

from __future__ import annotations

import json
import os
import stat
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost.durable.rpc import WEBHOOK_ROOT
from devhost.http.host_keys import (
    FUNCTION_KEY_VARIABLE,
    KEYS_FILE,
    MASTER_KEY_VARIABLE,
    AccessLevel,
    HostKeys,
    HostKeysError,
)
from tests.devhost.durable_app import durable_probe
from tests.devhost.durable_host import RunningHost, app_module_restored

LINKS = ("statusQueryGetUri", "sendEventPostUri", "terminatePostUri", "purgeHistoryDeleteUri")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_key_file_is_made_once_readable_by_its_owner_only_and_reused(tmp_path: Path) -> None:
    previous = os.umask(0)  # the most permissive umask: the file must still come out 0600
    try:
        first = HostKeys.load_or_create(tmp_path / "data", {})
    finally:
        os.umask(previous)
    path = tmp_path / "data" / KEYS_FILE
    assert first.path == path and _mode(path) == 0o600
    document = json.loads(path.read_text())
    assert document == {
        "masterKey": first.master,
        "functionKeys": {"default": first.function_keys["default"]},
        "systemKeys": {"durabletask_extension": first.durable, "blobs_extension": first.system_keys["blobs_extension"]},
    }
    made = (first.master, first.function_keys["default"], first.durable, first.system_keys["blobs_extension"])
    assert len(set(made)) == 4
    assert all(len(key) >= 43 for key in made)
    again = HostKeys.load_or_create(tmp_path / "data", {})
    assert (again.master, again.function_keys, again.durable) == (first.master, first.function_keys, first.durable)
    assert first.master not in repr(first) and first.durable not in repr(first)


def test_a_key_file_other_users_can_read_is_refused_without_showing_a_key(tmp_path: Path) -> None:
    keys = HostKeys.load_or_create(tmp_path, {})
    keys.path.chmod(0o644)
    with pytest.raises(HostKeysError, match="can be read by other users") as refused:
        HostKeys.load_or_create(tmp_path, {})
    assert str(keys.path) in str(refused.value) and keys.master not in str(refused.value)


def test_a_broken_key_file_is_refused_by_its_field_names(tmp_path: Path) -> None:
    path = tmp_path / KEYS_FILE
    path.write_text(json.dumps({"masterKey": "has spaces in it", "functionKeys": {"default": "fine-key"}}))
    path.chmod(0o600)
    with pytest.raises(HostKeysError) as refused:
        HostKeys.load_or_create(tmp_path, {})
    assert "masterKey, systemKeys.durabletask_extension" in str(refused.value)
    assert "has spaces" not in str(refused.value) and "fine-key" not in str(refused.value)
    path.write_text("{not json")
    with pytest.raises(HostKeysError, match="not a JSON key file"):
        HostKeys.load_or_create(tmp_path, {})


def test_environment_variables_replace_the_files_master_and_default_keys(tmp_path: Path) -> None:
    from_file = HostKeys.load_or_create(tmp_path, {})
    environ = {MASTER_KEY_VARIABLE: "scripted-master-key-0123456789", FUNCTION_KEY_VARIABLE: "scripted-function-key"}
    keys = HostKeys.load_or_create(tmp_path, environ)
    assert keys.overridden == (MASTER_KEY_VARIABLE, FUNCTION_KEY_VARIABLE)
    assert keys.allows(AccessLevel.ADMIN, "scripted-master-key-0123456789")
    assert keys.allows(AccessLevel.FUNCTION, "scripted-function-key")
    assert not keys.allows(AccessLevel.ADMIN, from_file.master)
    assert not keys.allows(AccessLevel.FUNCTION, from_file.function_keys["default"])
    assert json.loads(keys.path.read_text())["masterKey"] == from_file.master  # the file is left as it was
    with pytest.raises(HostKeysError, match=f"^{MASTER_KEY_VARIABLE} must be") as refused:
        HostKeys.load_or_create(tmp_path, {MASTER_KEY_VARIABLE: "two words"})
    assert "two words" not in str(refused.value)


def test_each_level_takes_the_keys_the_functions_host_accepts_for_it(tmp_path: Path) -> None:
    keys = HostKeys.load_or_create(tmp_path, {})
    master, function, system = keys.master, keys.function_keys["default"], keys.durable
    opened = {
        level: {
            name
            for name, key in (("master", master), ("function", function), ("system", system))
            if keys.allows(level, key)
        }
        for level in AccessLevel
    }
    assert opened == {
        AccessLevel.ANONYMOUS: {"master", "function", "system"},
        AccessLevel.FUNCTION: {"master", "function"},
        AccessLevel.SYSTEM: {"master", "system"},
        AccessLevel.ADMIN: {"master"},
    }
    assert keys.allows(AccessLevel.ANONYMOUS, None)
    for level in (AccessLevel.FUNCTION, AccessLevel.SYSTEM, AccessLevel.ADMIN):
        assert not keys.allows(level, None) and not keys.allows(level, "")
        assert not keys.allows(level, master + "x") and not keys.allows(level, master[:-1])
        assert not keys.allows(level, "kéy")  # not ASCII: refused, not an error


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[RunningHost]:
    """durable_app with keys required, called as a client without any key of its own."""
    durable_probe.reset()
    with app_module_restored():
        running = RunningHost(tmp_path, require_keys=True)
        running.key = None
        try:
            yield running
        finally:
            running.stop()
    durable_probe.reset()


def _with_code(url: str, key: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = [(n, v) for n, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True) if n != "code"]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode([*query, ("code", key)])))


def _without_code(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = [(n, v) for n, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True) if n != "code"]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def test_management_urls_carry_the_extensions_key_and_work_with_it_alone(keyed: RunningHost) -> None:
    keys = keyed.host.keys
    assert keys is not None
    # The app's anonymous starter: its durable client reaches the API over the key-less RPC listener.
    approved = keyed.start("approval")
    waiting = keyed.start("approval")
    for name in LINKS:
        assert f"code={keys.durable}" in approved[name], name
    status_url = approved["statusQueryGetUri"]
    assert keyed.request("GET", status_url)[0] in (200, 202)
    assert keyed.request("GET", _without_code(status_url))[0] == 401
    assert keyed.request("GET", _with_code(status_url, keys.function_keys["default"]))[0] == 401
    assert keyed.request("GET", _with_code(status_url, keys.master))[0] in (200, 202)

    event_url = approved["sendEventPostUri"].replace("{eventName}", "approved")
    assert keyed.request("POST", _without_code(event_url), "alice")[0] == 401
    assert keyed.request("POST", event_url, "alice")[0] == 202
    assert keyed.wait(status_url)["output"] == {"approved_by": "alice"}
    terminate_url = waiting["terminatePostUri"].replace("{text}", "no%20answer")
    assert keyed.request("POST", terminate_url)[0] == 202
    assert keyed.wait(waiting["statusQueryGetUri"])["runtimeStatus"] == "Terminated"
    assert keyed.request("DELETE", waiting["purgeHistoryDeleteUri"])[:3:2] == (200, {"instancesDeleted": 1})

    listing = f"/{WEBHOOK_ROOT}/instances"
    assert keyed.request("GET", listing)[0] == 401
    assert keyed.request("GET", f"{listing}?code={urllib.parse.quote(keys.durable)}")[0] == 200
    # The app's own status route reads through its durable client, with no key.
    status, _, document = keyed.request("GET", f"/api/status/{approved['id']}")
    assert (status, document["runtimeStatus"]) == (200, "Completed")


def test_the_rpc_listener_serves_only_the_durable_api_on_loopback(keyed: RunningHost) -> None:
    rpc = keyed.host.rpc_origin
    assert rpc.startswith("http://127.0.0.1:") and rpc != keyed.host.local_origin
    assert keyed.request("GET", f"{rpc}/{WEBHOOK_ROOT}/instances")[0] == 200
    assert keyed.request("GET", f"{rpc}/api/status/anything")[0] == 404
    assert keyed.request("POST", f"{rpc}/admin/functions/nightly_fan_out", {})[0] == 404


def test_running_a_timer_now_takes_the_master_key_only(keyed: RunningHost) -> None:
    keys = keyed.host.keys
    assert keys is not None
    url = "/admin/functions/nightly_fan_out"
    assert keyed.request("POST", url, {})[0] == 401
    assert keyed.request("POST", f"{url}?code={keys.function_keys['default']}", {})[0] == 401
    assert keyed.request("POST", f"{url}?code={keys.durable}", {})[0] == 401
    keyed.key = keys.master
    assert keyed.request("POST", url, {})[0] == 202
    assert keyed.wait(keyed.status_url("nightly"))["output"] == 0 + 1 + 4 + 9


def test_without_require_keys_there_is_no_key_file_and_nothing_asks_for_one(tmp_path: Path) -> None:
    with app_module_restored():
        running = RunningHost(tmp_path)
        try:
            assert running.host.keys is None and running.host.rpc_origin == running.host.local_origin
            assert running.request("POST", "/admin/functions/nightly_fan_out", {})[0] == 202
            assert running.request("GET", f"/{WEBHOOK_ROOT}/instances")[0] == 200
            links = running.start("fan_out", 2)
            assert "code=" not in links["statusQueryGetUri"]
        finally:
            running.stop()
    assert not (tmp_path / KEYS_FILE).exists()

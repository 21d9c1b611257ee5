"""No configured secret reaches a log line. devhost runs the real app with --verbose (tracebacks and request lines
included) against the Microshare stand-in, with a password, an API key and access tokens that exist nowhere else;
the forwarder runs through a token grant, a revoked token, a 500 and a refused grant, and settings that are wrong
in ways that put a secret where it does not belong. None of those values, nor their URL-encoded or base64 forms,
nor any piece of them long enough to recognise, shows in devhost's stdout or stderr."""

from __future__ import annotations

import base64
import secrets
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devhost.standins.microshare.dataset import MicroshareDataset
from devhost.standins.microshare.server import Fault, MicroshareStandIn
from tests.e2e.devhost_process import REPO, DevhostProcess
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

# Each secret carries a mark of its own, fresh per run: finding a mark in the output means a piece of it leaked.
PASSWORD_MARK, API_KEY_MARK, TOKEN_MARK = (secrets.token_hex(6) for _ in range(3))
USERNAME = "leak-check@sensorpulse.local"
PASSWORD = f"Pw:{PASSWORD_MARK}&x=1+2/3%"  # characters that URL encoding and form encoding change
API_KEY = f"ak/{API_KEY_MARK}+=?"
TOKEN_PREFIX = f"tk{TOKEN_MARK}-"
RUN = "/admin/functions/forward_people_counter"
FORWARDED = "forwarded io.microshare.peoplecounter"
FAILED = "Executed 'Functions.forward_people_counter' (Failed"


def forms(secret: str) -> set[str]:
    """The ways a value shows up when it leaks: as is, URL- or form-encoded, base64 (also as Basic auth)."""
    raw = secret.encode()
    encoded = {
        base64.b64encode(raw),
        base64.urlsafe_b64encode(raw),
        base64.b64encode(f"{USERNAME}:{secret}".encode()),
    }
    return {
        secret,
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
        *(value.decode().rstrip("=") for value in encoded),
    }


def leaks(output: str, values: Iterable[str]) -> list[str]:
    """Which of the values (in any of their forms) appear in the output; never the values themselves."""
    found = []
    for value in values:
        for shown in forms(value):
            if shown in output:
                found.append(f"a form of a secret ({len(value)} chars) at offset {output.index(shown)}")
    for mark in (PASSWORD_MARK, API_KEY_MARK, TOKEN_MARK):
        if mark in output:
            found.append(f"a secret's mark at offset {output.index(mark)}")
    return found


@pytest.fixture
def standin() -> Iterator[MicroshareStandIn]:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    dataset = MicroshareDataset.synthetic(now - timedelta(hours=6), now + timedelta(hours=1), ("Building A",), 2)
    server = MicroshareStandIn(
        dataset, username=USERNAME, password=PASSWORD, api_key=API_KEY, token_prefix=TOKEN_PREFIX
    )
    with server:
        yield server


def settings(standin: MicroshareStandIn) -> dict[str, str]:
    values = {"SENSOR_COUNT": "1", **standin.app_settings(), "AzureWebJobs.forward_hourly_snapshot.Disabled": "true"}
    assert (values["MICROSHARE_PASSWORD"], values["MICROSHARE_API_KEY"]) == (PASSWORD, API_KEY)
    return values


def run_forwarder(host: DevhostProcess) -> None:
    request = urllib.request.Request(host.base_url + RUN, data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202


def count(host: DevhostProcess, text: str) -> int:
    return sum(text in line for line in list(host.output))


def test_no_secret_reaches_the_output_through_grants_revocations_and_failures(
    standin: MicroshareStandIn, tmp_path: Path
) -> None:
    host = DevhostProcess(tmp_path, settings(standin), extra_args=["--verbose"])
    try:
        run_forwarder(host)  # the first grant, then the views with the token
        wait_for(lambda: count(host, FORWARDED) >= 1, 60, "the first run")
        standin.revoke_tokens()  # the stored token is refused: a new grant
        run_forwarder(host)
        wait_for(lambda: count(host, FORWARDED) >= 2, 60, "the run after a revoked token")
        standin.inject(Fault("token", status=500))  # the grant fails once and is retried
        standin.revoke_tokens()
        run_forwarder(host)
        wait_for(lambda: count(host, FORWARDED) >= 3, 60, "the run through a failing grant")
        standin.inject(Fault("token", status=401))  # the grant is refused: the run fails
        standin.revoke_tokens()
        run_forwarder(host)
        wait_for(lambda: count(host, FAILED) >= 1, 60, "the run whose grant is refused")
    finally:
        assert host.stop() == 0
    output = "".join(host.output)
    # The runs happened, and were logged in detail: a check of an empty or silent output would prove nothing.
    assert "Microshare refused the access token; getting a new one" in output
    assert "MicroshareAuthError: Microshare refused the credentials (HTTP 401)" in output
    assert "Traceback (most recent call last)" in output  # --verbose logs the failure with its traceback
    assert standin.token_grants >= 3 and not standin.pending_faults  # each fault fired
    tokens = standin.issued_tokens
    assert len(tokens) >= 6 and all(token.startswith(TOKEN_PREFIX) for token in tokens)
    assert not leaks(output, [PASSWORD, API_KEY, *tokens])


def test_a_secret_in_a_malformed_setting_is_named_by_the_setting_only(
    standin: MicroshareStandIn, tmp_path: Path
) -> None:
    # Credentials pasted into the URL: refused (plain http to a host that is not this machine) before any request.
    auth_url = f"http://{urllib.parse.quote(USERNAME)}:{urllib.parse.quote(PASSWORD, safe='')}@microshare.invalid/"
    host = DevhostProcess(tmp_path, {**settings(standin), "MICROSHARE_AUTH_URL": auth_url}, extra_args=["--verbose"])
    try:
        run_forwarder(host)
        wait_for(lambda: count(host, FAILED) >= 1, 60, "the run with the malformed setting")
    finally:
        assert host.stop() == 0
    output = "".join(host.output)
    assert "SettingsError: MICROSHARE_AUTH_URL must use https" in output
    assert standin.token_grants == 0
    assert not leaks(output, [PASSWORD, API_KEY, auth_url])


def test_a_secret_in_a_setting_read_at_start_up_is_named_by_the_setting_only(tmp_path: Path) -> None:
    # The API key pasted into a number: devhost refuses to start, naming the setting.
    environ = {"SENSOR_COUNT": API_KEY, "PATH": "/usr/bin:/bin"}
    finished = subprocess.run(
        [sys.executable, "-m", "devhost", "--port", "0", "--data-dir", str(tmp_path), "--verbose"],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = finished.stdout + finished.stderr
    assert finished.returncode == 1, output
    assert "devhost: SENSOR_COUNT must be a whole number" in output
    assert not leaks(output, [API_KEY])


def test_the_leak_check_finds_each_form_it_claims_to() -> None:
    """The check above can fail: each form of a secret, and a mark alone, is caught."""
    for shown in forms(PASSWORD):
        assert leaks(f"log line {shown} end", [PASSWORD]), shown
    assert leaks(f"token {TOKEN_MARK[:12]}", [])
    assert not leaks("a log line with nothing secret in it", [PASSWORD, API_KEY])

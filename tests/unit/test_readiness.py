"""The readiness probe's rules: all checks at once, an answer within the deadline whatever a backend does,
failures named by type (an SDK message may carry an endpoint or a token), and "not configured" apart."""

from __future__ import annotations

import threading
import time

from shared.ops.readiness import NotConfigured, readiness_body, run_checks


class StatusError(RuntimeError):
    status_code = 503


def test_a_hung_backend_fails_its_check_at_the_deadline_and_the_others_still_answer() -> None:
    release = threading.Event()

    def hangs() -> None:
        release.wait(30)

    began = time.monotonic()
    try:
        results = run_checks({"state": lambda: None, "documents": hangs}, 0.5)
    finally:
        release.set()
    assert time.monotonic() - began < 2.0
    by_name = {result.name: result for result in results}
    assert by_name["state"].status == "ok"
    assert by_name["documents"].status == "failed"
    assert by_name["documents"].error == "no answer within 0.5 s"
    status, body = readiness_body(results)
    assert status == 503
    assert body["failed"] == ["documents"]
    assert [result.name for result in results] == ["state", "documents"]  # in the order asked


def test_checks_run_in_parallel() -> None:
    def slow() -> None:
        time.sleep(0.3)

    began = time.monotonic()
    results = run_checks({f"backend-{n}": slow for n in range(5)}, 5.0)
    assert time.monotonic() - began < 1.0
    assert all(result.status == "ok" for result in results)


def test_a_failure_is_named_by_type_status_and_cause_never_by_message() -> None:
    def failing() -> None:
        try:
            raise StatusError("https://account.example/?sig=SECRET-TOKEN")
        except StatusError as cause:
            raise ConnectionError("token=SECRET-TOKEN") from cause

    (result,) = run_checks({"state": failing})
    assert result.status == "failed"
    assert result.error == "ConnectionError caused by StatusError 503"
    assert "SECRET" not in str(readiness_body([result])[1])


def test_not_configured_is_reported_but_does_not_make_the_app_unready() -> None:
    def unconfigured() -> None:
        raise NotConfigured("no connection for event hub 'telemetry'")

    results = run_checks({"documents": lambda: None, "eventhub:telemetry": unconfigured})
    status, body = readiness_body(results)
    assert status == 200
    assert body["status"] == "ready"
    checks = body["checks"]
    assert isinstance(checks, dict)
    assert checks["eventhub:telemetry"]["status"] == "not configured"
    assert "failed" not in body

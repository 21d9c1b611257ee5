"""The readiness probe's rules: all checks at once, an answer within the deadline whatever a backend does,
failures named by type (an SDK message may carry an endpoint or a token), and "not configured" apart."""

from __future__ import annotations

import threading

from shared.ops.readiness import NotConfigured, readiness_body, run_checks


class StatusError(RuntimeError):
    status_code = 503


def test_a_hung_backend_fails_its_check_at_the_deadline_and_the_others_still_answer() -> None:
    release, finished = threading.Event(), threading.Event()

    def hangs() -> None:
        release.wait(60)
        finished.set()

    try:
        results = run_checks({"state": lambda: None, "documents": hangs}, 0.5)
        # The answer came while the hung check still hung: the probe did not wait for it.
        assert not finished.is_set()
    finally:
        release.set()
    by_name = {result.name: result for result in results}
    assert by_name["state"].status == "ok"
    assert by_name["documents"].status == "failed"
    assert by_name["documents"].error == "no answer within 0.5 s"
    status, body = readiness_body(results)
    assert status == 503
    assert body["failed"] == ["documents"]
    assert [result.name for result in results] == ["state", "documents"]  # in the order asked


def test_checks_run_in_parallel() -> None:
    # Each check waits for all five to be running at once: run one after another, the first would never see the
    # others, break the barrier at its timeout and fail.
    together = threading.Barrier(5, timeout=20)

    def meets_the_others() -> None:
        together.wait()

    results = run_checks({f"backend-{n}": meets_the_others for n in range(5)}, 30.0)
    assert [result.status for result in results] == ["ok"] * 5


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

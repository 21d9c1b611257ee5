"""Durable Functions on devhost, as a user of tests/devhost/durable_app sees them: started through the app's
async HTTP starter (the Python durable client over devhost's RPC endpoint), watched on the status endpoint, with and
without `--require-keys`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.devhost.durable_app import durable_probe
from tests.devhost.durable_host import RunningHost, app_module_restored, wait_until


@pytest.fixture
def app() -> Iterator[None]:
    """A fresh durable_probe (what the test app's activities report), and the real app's module put back."""
    durable_probe.reset()
    with app_module_restored():
        yield
    durable_probe.reset()


@pytest.fixture(params=[False, True], ids=["open", "require-keys"])
def host(app: None, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[RunningHost]:
    """Every flow runs twice: as under func start, and with keys required (the app's durable client then goes
    through the key-less RPC listener, the test's own calls carry the master key)."""
    running = RunningHost(tmp_path, require_keys=request.param)
    try:
        yield running
    finally:
        running.stop()


def _history_of(host: RunningHost, instance_id: str) -> list[dict[str, object]]:
    status, _, document = host.request("GET", f"/api/status/{instance_id}")
    assert status == 200
    history: list[dict[str, object]] = document["history"]
    return history


def test_fan_out_fan_in_completes_with_the_sum_and_its_custom_status(host: RunningHost) -> None:
    final = host.run("fan_out", 10)
    assert final["runtimeStatus"] == "Completed"
    assert final["output"] == sum(n * n for n in range(10))
    assert final["customStatus"] == {"stage": "summed", "activities": 10}
    # The Python client reads the same status, with the history the extension's showHistory gives.
    history = _history_of(host, final["instanceId"])
    completed = [e for e in history if e["EventType"] == "TaskCompleted"]
    assert sorted(e["Result"] for e in completed) == sorted(n * n for n in range(10))  # type: ignore[type-var]
    assert {e["FunctionName"] for e in completed} == {"square"}


def test_activity_that_fails_twice_is_retried_and_the_third_attempt_wins(host: RunningHost, app: None) -> None:
    final = host.run("with_retry", "sensor-7")
    assert final["runtimeStatus"] == "Completed"
    assert final["output"] == {"key": "sensor-7", "attempt": 3}
    assert durable_probe.attempts[("sensor-7", 1)] == 3
    kinds = [e["EventType"] for e in _history_of(host, final["instanceId"])]
    # Each failure is followed by the retry timer DurableTask.Core schedules, then the next attempt.
    assert kinds == [
        "ExecutionStarted",
        "TaskFailed",
        "TimerCreated",
        "TimerFired",
        "TaskFailed",
        "TimerCreated",
        "TimerFired",
        "TaskCompleted",
        "ExecutionCompleted",
    ]


def test_activity_that_never_succeeds_fails_the_orchestration_after_its_attempts(host: RunningHost, app: None) -> None:
    final = host.run("gives_up", "sensor-9")
    assert final["runtimeStatus"] == "Failed"
    assert final["output"].startswith("Orchestrator function 'gives_up' failed: Activity function 'always_fails'")
    assert "sensor-9 never works" in final["output"]
    assert durable_probe.attempts[("sensor-9", 1)] == 2


def test_durable_timer_wakes_the_orchestration_no_earlier_than_its_fire_time(host: RunningHost) -> None:
    final = host.run("with_timer")
    assert final["runtimeStatus"] == "Completed"
    assert final["output"]["woke_at"] >= final["output"]["fire_at"]


def test_task_any_returns_the_first_task_and_the_cancelled_timer_does_not_hold_the_orchestration(
    host: RunningHost,
) -> None:
    final = host.run("race", 7)
    assert final["runtimeStatus"] == "Completed"
    assert final["output"] == {"winner": "activity", "value": 49}
    assert final["customStatus"] == "activity won"


def test_continue_as_new_starts_the_instance_over_with_its_new_input(host: RunningHost) -> None:
    final = host.run("countdown", 3)
    assert (final["runtimeStatus"], final["output"]) == ("Completed", "liftoff")
    history = _history_of(host, final["instanceId"])
    # Only the last generation's history is kept: it started with 0 and scheduled nothing.
    assert [e["EventType"] for e in history] == ["ExecutionStarted", "ExecutionCompleted"]


def test_orchestrator_that_branches_on_the_clock_and_random_fails_as_non_deterministic(host: RunningHost) -> None:
    final = host.run("nondeterministic")
    assert final["runtimeStatus"] == "Failed"
    assert final["output"].lower().startswith("non-deterministic workflow detected: a previous execution")


def test_async_timer_function_starts_an_orchestration_with_its_durable_client(host: RunningHost) -> None:
    status, _, _ = host.request("POST", "/admin/functions/nightly_fan_out", {})
    assert status == 202
    wait_until(lambda: host.request("GET", host.status_url("nightly"))[0] != 404, "the timer to start 'nightly'")
    final = host.wait(host.status_url("nightly"))
    assert (final["runtimeStatus"], final["output"]) == ("Completed", 0 + 1 + 4 + 9)


def test_http_api_raises_events_terminates_refuses_a_live_duplicate_and_purges(host: RunningHost) -> None:
    approved = host.start("approval")
    waiting = host.start("approval")
    for links in (approved, waiting):
        wait_until(
            lambda links=links: (
                host.request("GET", links["statusQueryGetUri"])[2]["customStatus"]  # type: ignore[misc]
                == "waiting for approval"
            ),
            "the orchestration to wait for its event",
        )
    status, _, error = host.request("POST", f"/runtime/webhooks/durabletask/orchestrators/approval/{waiting['id']}")
    assert status == 409
    assert error["Message"] == "An Orchestration instance with the status Running already exists."

    event_url = approved["sendEventPostUri"].replace("{eventName}", "approved")
    assert host.request("POST", event_url, "alice")[0] == 202
    assert host.wait(approved["statusQueryGetUri"])["output"] == {"approved_by": "alice"}

    terminate_url = waiting["terminatePostUri"].replace("{text}", "no%20answer")
    assert host.request("POST", terminate_url)[0] == 202
    terminated = host.wait(waiting["statusQueryGetUri"])
    assert (terminated["runtimeStatus"], terminated["output"]) == ("Terminated", "no answer")
    assert host.request("POST", terminate_url)[0] == 410

    status, _, listed = host.request("GET", "/runtime/webhooks/durabletask/instances/?runtimeStatus=Terminated")
    assert status == 200
    assert [i["instanceId"] for i in listed] == [waiting["id"]]
    status, _, purged = host.request("DELETE", waiting["purgeHistoryDeleteUri"])
    assert (status, purged) == (200, {"instancesDeleted": 1})
    assert host.request("GET", waiting["statusQueryGetUri"])[0] == 404


def test_starting_an_orchestrator_that_does_not_exist_is_a_bad_request(host: RunningHost) -> None:
    status, _, error = host.request("POST", "/runtime/webhooks/durabletask/orchestrators/no_such_thing")
    assert status == 400
    assert "'no_such_thing' doesn't exist" in error["ExceptionMessage"]


def test_thousand_activity_fan_out_keeps_its_history_under_a_megabyte(host: RunningHost) -> None:
    final = host.run("fan_out", 1000)
    assert (final["runtimeStatus"], final["output"]) == ("Completed", sum(n * n for n in range(1000)))
    durable = host.host.durable
    assert durable is not None
    assert durable.store.history_bytes(final["instanceId"]) < 1_000_000


def test_restart_mid_orchestration_runs_the_unfinished_activities_and_gives_the_same_output(
    app: None, tmp_path: Path
) -> None:
    durable_probe.hold_from, durable_probe.generation = 2, 1
    durable_probe.release.clear()
    first = RunningHost(tmp_path)
    try:
        instance_id = first.start("steps", 8)["id"]
        # Two workers (host.json): steps 0 and 1 finish, 2 and 3 are held, 4 to 7 wait in the queue.
        held = [("step-2", 1), ("step-3", 1)]
        wait_until(lambda: all(durable_probe.attempts[key] for key in held), "steps 2 and 3 to start")
    finally:
        stopper = threading.Thread(target=first.host.stop)
        stopper.start()
        first.host.stop_event.wait()
        durable_probe.release.set()  # the held steps finish while the host stops; nothing queued starts any more
        stopper.join()
    first.assert_threads_stopped()
    assert {key for key, generation in durable_probe.attempts if generation == 1} == {f"step-{n}" for n in range(4)}

    durable_probe.hold_from, durable_probe.generation = None, 2
    second = RunningHost(tmp_path)
    try:
        final = second.wait(second.status_url(instance_id))
    finally:
        second.stop()
    assert (final["runtimeStatus"], final["output"]) == ("Completed", [n * 10 for n in range(8)])
    # What was scheduled before the stop and never ran ran once, on the second host; nothing ran twice.
    assert {key: count for (key, generation), count in durable_probe.attempts.items() if generation == 2} == {
        f"step-{n}": 1 for n in range(4, 8)
    }

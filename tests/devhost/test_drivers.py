"""devhost's trigger drivers against real embedded storage: checkpoints, batching, retries, timers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
from azure.functions.timer import TimerRequest

from devhost.app.function_index import FunctionSpec, RetryPolicy
from devhost.app.invoker import Invoker
from devhost.triggers.change_feed import ChangeFeedDriver
from devhost.triggers.event_hub import EventHubDriver
from devhost.triggers.timer import STATUS_PARTITION, STATUS_TABLE, TimerDriver
from devhost.triggers.warmup import WARMUP_TRIGGER, run_warmup
from shared.storage.names import PARTITION_KEY_PATHS
from shared.storage.ports import OutboundEvent
from shared.storage.sqlite.database import SqliteDatabase
from shared.storage.sqlite.documents import SqliteDocumentStore
from shared.storage.sqlite.events import SqliteEventHub
from shared.storage.sqlite.state import SqliteStateStore
from tests.waiting import wait_for

NO_WAIT_RETRY = RetryPolicy("fixed_delay", 2, timedelta(0), timedelta(0), timedelta(0))


def _spec(trigger: dict[str, Any], function: Callable[..., Any], retry: RetryPolicy | None = None) -> FunctionSpec:
    trigger = {"name": "arg", "direction": "in", **trigger}
    return FunctionSpec(name="fn", trigger=trigger, bindings=[trigger], retry=retry, function=function)


def _readings(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"id": f"r{i}", "sensor_id": "s1", "value": i} for i in range(start, start + n)]


def _feed_trigger(**extra: Any) -> dict[str, Any]:
    return {
        "type": "cosmosDBTrigger",
        "containerName": "readings",
        "databaseName": "db",
        "leaseContainerName": "leases",
        "leaseContainerPrefix": "t-",
        "startFromBeginning": True,
        **extra,
    }


def test_change_feed_delivers_batches_of_max_items_and_checkpoints_after_success(database: SqliteDatabase) -> None:
    documents = SqliteDocumentStore(database, PARTITION_KEY_PATHS)
    state = SqliteStateStore(database)
    documents.upsert_many("readings", _readings(7))
    batches: list[list[str]] = []
    spec = _spec(_feed_trigger(maxItemsPerInvocation=3), lambda arg: batches.append([d["id"] for d in arg]))
    driver = ChangeFeedDriver(spec, Invoker(threading.Event()), documents, state, threading.Event(), {})
    driver.acquire_lease()
    while driver.poll_once():
        pass
    assert batches == [["r0", "r1", "r2"], ["r3", "r4", "r5"], ["r6"]]

    # A second host start reads the lease and delivers only what is new.
    documents.upsert_many("readings", _readings(2, start=7))
    again = ChangeFeedDriver(spec, Invoker(threading.Event()), documents, state, threading.Event(), {})
    again.acquire_lease()
    again.poll_once()
    assert batches[-1] == ["r7", "r8"]


def test_new_lease_without_start_from_beginning_skips_existing_documents(database: SqliteDatabase) -> None:
    documents = SqliteDocumentStore(database, PARTITION_KEY_PATHS)
    state = SqliteStateStore(database)
    documents.upsert_many("readings", _readings(3))
    seen: list[str] = []
    spec = _spec(_feed_trigger(startFromBeginning=False), lambda arg: seen.extend(d["id"] for d in arg))
    driver = ChangeFeedDriver(spec, Invoker(threading.Event()), documents, state, threading.Event(), {})
    driver.acquire_lease()
    documents.upsert_many("readings", _readings(1, start=3))
    driver.poll_once()
    assert seen == ["r3"]


def test_failing_batch_is_retried_per_policy_then_passed(database: SqliteDatabase) -> None:
    documents = SqliteDocumentStore(database, PARTITION_KEY_PATHS)
    state = SqliteStateStore(database)
    documents.upsert_many("readings", _readings(2))
    calls: list[int] = []

    def always_fails(arg: func.DocumentList) -> None:
        calls.append(len(arg))
        raise RuntimeError("storage down")

    spec = _spec(_feed_trigger(), always_fails, NO_WAIT_RETRY)
    driver = ChangeFeedDriver(spec, Invoker(threading.Event()), documents, state, threading.Event(), {})
    driver.acquire_lease()
    assert driver.poll_once() == 2
    assert calls == [2, 2, 2]  # the first try and two retries
    assert driver.poll_once() == 0  # the host moved past the batch


def test_stop_during_retries_keeps_the_lease_so_the_batch_comes_again(database: SqliteDatabase) -> None:
    documents = SqliteDocumentStore(database, PARTITION_KEY_PATHS)
    state = SqliteStateStore(database)
    documents.upsert_many("readings", _readings(2))
    stop = threading.Event()

    def fails_then_stop(arg: func.DocumentList) -> None:
        stop.set()
        raise RuntimeError("storage down")

    forever = RetryPolicy("fixed_delay", -1, timedelta(0), timedelta(0), timedelta(0))
    driver = ChangeFeedDriver(
        _spec(_feed_trigger(), fails_then_stop, forever), Invoker(stop), documents, state, stop, {}
    )
    driver.acquire_lease()
    driver.poll_once()

    seen: list[str] = []
    restarted = ChangeFeedDriver(
        _spec(_feed_trigger(), lambda arg: seen.extend(d["id"] for d in arg)),
        Invoker(threading.Event()),
        documents,
        state,
        threading.Event(),
        {},
    )
    restarted.acquire_lease()
    restarted.poll_once()
    assert seen == ["r0", "r1"]


def test_poll_delay_comes_from_the_binding_then_the_setting(database: SqliteDatabase) -> None:
    documents = SqliteDocumentStore(database, PARTITION_KEY_PATHS)
    state = SqliteStateStore(database)
    invoker, stop = Invoker(threading.Event()), threading.Event()
    from_binding = ChangeFeedDriver(_spec(_feed_trigger(feedPollDelay=250), print), invoker, documents, state, stop, {})
    from_setting = ChangeFeedDriver(
        _spec(_feed_trigger(), print), invoker, documents, state, stop, {"DEVHOST_FEED_POLL_DELAY_MS": "100"}
    )
    default = ChangeFeedDriver(_spec(_feed_trigger(), print), invoker, documents, state, stop, {})
    assert (from_binding.poll_delay, from_setting.poll_delay, default.poll_delay) == (0.25, 0.1, 0.5)


def _hub_trigger(cardinality: str, group: str = "$Default") -> dict[str, Any]:
    return {"type": "eventHubTrigger", "eventHubName": "telemetry", "consumerGroup": group, "cardinality": cardinality}


def test_event_hub_many_delivers_per_partition_batches_up_to_the_host_batch_size(database: SqliteDatabase) -> None:
    hub = SqliteEventHub(database, partitions=2)
    hub.publish("telemetry", [OutboundEvent(f"e{i}".encode(), partition_key="k") for i in range(5)])
    batches: list[list[bytes]] = []
    spec = _spec(_hub_trigger("many"), lambda arg: batches.append([e.get_body() for e in arg]))
    driver = EventHubDriver(spec, Invoker(threading.Event()), hub, threading.Event(), max_batch_size=2)
    partition = next(p for p in range(2) if hub.receive("telemetry", p, None, 1))
    while driver.poll_partition(partition):
        pass
    assert batches == [[b"e0", b"e1"], [b"e2", b"e3"], [b"e4"]]


def test_event_hub_one_calls_once_per_event_and_groups_checkpoint_separately(database: SqliteDatabase) -> None:
    hub = SqliteEventHub(database, partitions=1)
    hub.publish("telemetry", [OutboundEvent(b"a"), OutboundEvent(b"b")])
    first: list[bytes] = []
    second: list[bytes] = []
    one = EventHubDriver(
        _spec(_hub_trigger("one"), lambda arg: first.append(arg.get_body())),
        Invoker(threading.Event()),
        hub,
        threading.Event(),
        100,
    )
    other = EventHubDriver(
        _spec(_hub_trigger("one", "dashboard"), lambda arg: second.append(arg.get_body())),
        Invoker(threading.Event()),
        hub,
        threading.Event(),
        100,
    )
    assert one.poll_partition(0) == 2
    assert one.poll_partition(0) == 0
    assert other.poll_partition(0) == 2
    assert first == second == [b"a", b"b"]


def test_event_hub_passes_iothub_properties_as_iothub_metadata(database: SqliteDatabase) -> None:
    hub = SqliteEventHub(database, partitions=1)
    routed = {"iothub-connection-device-id": "thermo-1", "iothub-enqueuedtime": "2025-06-09T10:00:00Z"}
    hub.publish("telemetry", [OutboundEvent(b"a", properties={**routed, "recType": "x"}), OutboundEvent(b"b")])
    received: list[func.EventHubEvent] = []
    driver = EventHubDriver(
        _spec(_hub_trigger("many"), lambda arg: received.extend(arg)),
        Invoker(threading.Event()),
        hub,
        threading.Event(),
        100,
    )

    driver.poll_partition(0)

    assert [e.iothub_metadata for e in received] == [
        {"connection-device-id": "thermo-1", "enqueuedtime": "2025-06-09T10:00:00Z"},
        None,  # as from a hub IoT Hub does not route to
    ]
    assert all(e.enqueued_time is not None and e.enqueued_time.tzinfo is not None for e in received)


def _timer_spec(schedule: str, calls: list[func.TimerRequest], **extra: Any) -> FunctionSpec:
    return _spec({"type": "timerTrigger", "schedule": schedule, **extra}, lambda arg: calls.append(arg))


def test_use_monitor_defaults_on_for_schedules_a_minute_or_more_apart(database: SqliteDatabase) -> None:
    state, stop, invoker = SqliteStateStore(database), threading.Event(), Invoker(threading.Event())
    calls: list[func.TimerRequest] = []
    assert not TimerDriver(_timer_spec("*/5 * * * * *", calls), invoker, state, stop).use_monitor
    assert TimerDriver(_timer_spec("0 */15 * * * *", calls), invoker, state, stop).use_monitor
    assert not TimerDriver(_timer_spec("0 */15 * * * *", calls, useMonitor=False), invoker, state, stop).use_monitor


def test_run_on_startup_fires_once_at_start(database: SqliteDatabase) -> None:
    calls: list[func.TimerRequest] = []
    stop = threading.Event()
    driver = TimerDriver(
        _timer_spec("0 0 0 1 1 *", calls, runOnStartup=True), Invoker(stop), SqliteStateStore(database), stop
    )
    thread = threading.Thread(target=driver.run)
    thread.start()
    try:
        wait_for(lambda: calls, 60, "the run at start")
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert len(calls) == 1  # the driver has ended: nothing more can fire, and the next occurrence is in January
    assert calls[0].past_due is False


def test_missed_occurrence_fires_past_due_at_start(database: SqliteDatabase) -> None:
    state = SqliteStateStore(database)
    now = datetime(2026, 3, 1, 12, 20, tzinfo=UTC)
    state.upsert(
        STATUS_TABLE,
        STATUS_PARTITION,
        "fn",
        {"Last": "2026-03-01T12:00:00+00:00", "Next": "2026-03-01T12:15:00+00:00", "LastUpdated": "x"},
    )
    calls: list[func.TimerRequest] = []
    stop = threading.Event()
    driver = TimerDriver(_timer_spec("0 */15 * * * *", calls), Invoker(stop), state, stop, clock=lambda: now)
    stop_after_first = threading.Thread(target=driver.run)
    stop.set()  # the loop exits at once; only the start-up catch-up runs
    stop_after_first.start()
    stop_after_first.join(30)
    assert not stop_after_first.is_alive()
    assert len(calls) == 1
    assert calls[0].past_due is True
    saved = state.get(STATUS_TABLE, STATUS_PARTITION, "fn")
    assert saved is not None
    assert saved.properties["Next"] == "2026-03-01T12:30:00+00:00"


def test_scheduled_occurrences_fire_on_time(database: SqliteDatabase) -> None:
    fired: list[tuple[datetime, TimerRequest]] = []
    spec = _spec(
        {"type": "timerTrigger", "schedule": "* * * * * *"}, lambda arg: fired.append((datetime.now(UTC), arg))
    )
    stop = threading.Event()
    driver = TimerDriver(spec, Invoker(stop), SqliteStateStore(database), stop)
    thread = threading.Thread(target=driver.run)
    thread.start()
    try:
        wait_for(lambda: len(fired) >= 3, 60, "three occurrences of an every-second schedule")
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    # Without the monitor, Last is the occurrence the call was for: each on a whole second, none twice, and none
    # run before its time (within what the wall clock and the wait's own clock may differ by).
    occurrences = [datetime.fromisoformat(request.schedule_status["Last"]) for _, request in fired]
    assert all(occurrence.microsecond == 0 for occurrence in occurrences), occurrences
    assert occurrences == sorted(set(occurrences)), occurrences
    assert all(
        at >= occurrence - timedelta(milliseconds=50) for (at, _), occurrence in zip(fired, occurrences, strict=True)
    )
    assert all(
        datetime.fromisoformat(request.schedule_status["Next"]) > occurrence
        for (_, request), occurrence in zip(fired, occurrences, strict=True)
    )


def test_warmup_is_called_once_with_its_context_and_a_failure_stops_nothing() -> None:
    calls: list[tuple[object, str]] = []

    def warmup(arg: object, context: func.Context) -> None:
        calls.append((arg, context.invocation_id))

    def broken(arg: object) -> None:
        raise OSError("font cache unreadable")

    invoker = Invoker(threading.Event())
    run_warmup(_spec({"type": WARMUP_TRIGGER}, warmup), invoker)
    run_warmup(_spec({"type": WARMUP_TRIGGER}, broken), invoker)  # logged by the invoker; does not raise

    assert len(calls) == 1
    assert type(calls[0][0]).__name__ == "WarmUpContext"
    assert calls[0][1]

"""The Microshare forwarder against the stand-in and the embedded hub: exactly once in effect, whatever fails."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import timedelta

import pytest

from devhost.standins.microshare.dataset import MicroshareDataset
from devhost.standins.microshare.server import Fault
from shared.microshare.api import HOURLY_SNAPSHOT, PEOPLE_COUNTER
from shared.microshare.forwarder import ForwardingIncomplete
from shared.readings.dead_letters import DeadLetterBox
from shared.storage.names import DELIVERIES_TABLE
from shared.storage.ports import EventPublisher, OutboundEvent, PublishOutcome, StorageError
from shared.storage.sqlite.database import SqliteDatabase
from shared.storage.sqlite.events import SqliteEventHub
from tests.component.microshare_rig import API_KEY, PASSWORD, T0, day_of_data, microshare_rig

END_OF_DAY = T0 + timedelta(days=1)


def test_ten_thousand_records_over_eleven_pages_are_forwarded_exactly_once(database: SqliteDatabase) -> None:
    dataset_end = T0 + timedelta(minutes=15 * 2500)  # 4 devices x 2,500 intervals = 10,000 records
    dataset = MicroshareDataset.synthetic(T0, dataset_end, locations=("Building A",), devices_per_location=4)
    with microshare_rig(database, dataset, dataset_end, MICROSHARE_FIRST_RUN_LOOKBACK_HOURS="1000") as rig:
        result = rig.forwarder().run(PEOPLE_COUNTER)
        view_pages = [r for r in rig.standin.requests if r.path.startswith("/share/")]
        per_key = rig.records_per_key()
    assert result.records == 10_000
    assert result.pages == 11 and len(view_pages) == 11
    assert len(per_key) == 10_000
    assert set(per_key.values()) == {1}
    assert result.hubs["telemetry"].sent == 10_000


def test_every_query_sends_all_six_fields_a_json_array_data_context_and_the_trailing_slash(
    database: SqliteDatabase,
) -> None:
    with microshare_rig(database, day_of_data(), END_OF_DAY) as rig:
        rig.forwarder().run(PEOPLE_COUNTER)
        rig.forwarder().run(HOURLY_SNAPSHOT)
        views = [r for r in rig.standin.requests if r.path.startswith("/share/")]
    assert views
    for request in views:
        assert request.path == "/share/io.microshare.fm.master.agg/"
        assert all(f"field{n}" in request.query for n in range(1, 7))
        assert json.loads(request.query["dataContext"]) == ["people"]
        assert request.query["from"].endswith(".000Z") and request.query["to"].endswith(".000Z")


def test_the_same_window_run_twice_sends_nothing_new(database: SqliteDatabase) -> None:
    with microshare_rig(database, day_of_data(), END_OF_DAY) as rig:
        forwarder = rig.forwarder()
        first = forwarder.run(PEOPLE_COUNTER, T0, END_OF_DAY)
        again = forwarder.run(PEOPLE_COUNTER, T0, END_OF_DAY)
        per_key = rig.records_per_key()
    assert first.hubs["telemetry"].sent == 2 * 2 * 96
    assert again.hubs["telemetry"].sent == 0
    assert again.hubs["telemetry"].skipped == 2 * 2 * 96
    assert set(per_key.values()) == {1}


def test_each_run_starts_from_the_watermark_minus_the_overlap(database: SqliteDatabase) -> None:
    with microshare_rig(database, day_of_data(2), END_OF_DAY, MICROSHARE_OVERLAP_MINUTES="30") as rig:
        forwarder = rig.forwarder()
        first = forwarder.run(PEOPLE_COUNTER)
        rig.clock.now = END_OF_DAY + timedelta(minutes=15)
        second = forwarder.run(PEOPLE_COUNTER)
    newest = END_OF_DAY - timedelta(minutes=15)  # the last interval that started before the first run
    assert first.watermark_after == newest
    assert second.start == newest - timedelta(minutes=30)
    assert second.hubs["telemetry"].sent == 2 * 2  # only the new interval, for 2 devices in 2 buildings
    assert second.hubs["telemetry"].skipped == 3 * 2 * 2  # the overlap: 23:15, 23:30 and 23:45 again
    assert second.watermark_after == END_OF_DAY


class CrashingHub:
    """A hub whose publish raises, as a crash or outage between the first hub and the second would."""

    def __init__(self, inner: SqliteEventHub, fail: bool = True) -> None:
        self.inner = inner
        self.fail = fail

    def publish(self, hub: str, events: Sequence[OutboundEvent]) -> PublishOutcome:
        if self.fail:
            raise StorageError(f"event hub {hub} is unreachable")
        return self.inner.publish(hub, events)


def test_a_failure_after_the_first_hub_ends_with_every_event_exactly_once_on_each_hub(
    database: SqliteDatabase,
) -> None:
    with microshare_rig(database, day_of_data(), END_OF_DAY) as rig:
        second = CrashingHub(rig.hub)
        publishers: dict[str, EventPublisher] = {"telemetry": rig.hub, "archive": second}
        with pytest.raises(ForwardingIncomplete, match="archive"):
            rig.forwarder(publishers).run(PEOPLE_COUNTER)
        assert rig.forwarder(publishers).watermark(PEOPLE_COUNTER) is None  # nothing reached every hub
        second.fail = False
        rig.clock.now += timedelta(minutes=15)
        result = rig.forwarder(publishers).run(PEOPLE_COUNTER)
        telemetry, archive = rig.records_per_key("telemetry"), rig.records_per_key("archive")
    assert result.hubs["telemetry"].sent == 0
    assert result.hubs["archive"].sent == 2 * 2 * 96
    assert len(telemetry) == len(archive) == 2 * 2 * 96
    assert set(telemetry.values()) == set(archive.values()) == {1}
    assert result.watermark_after == END_OF_DAY - timedelta(minutes=15)


class Crash(BaseException):
    """The process dying: nothing in the forwarder catches it, nothing after it runs."""


class HubThatCrashesTheProcess:
    def publish(self, hub: str, events: Sequence[OutboundEvent]) -> PublishOutcome:
        raise Crash


def test_a_crash_after_the_first_hub_and_before_the_second_ends_with_every_event_once_on_each_hub(
    database: SqliteDatabase,
) -> None:
    with microshare_rig(database, day_of_data(), END_OF_DAY) as rig:
        with pytest.raises(Crash):
            rig.forwarder({"telemetry": rig.hub, "archive": HubThatCrashesTheProcess()}).run(PEOPLE_COUNTER)
        assert len(rig.records_per_key("telemetry")) > 0 and not rig.records_per_key("archive")
        rig.clock.now += timedelta(minutes=15)
        restarted = rig.forwarder({"telemetry": rig.hub, "archive": rig.hub})  # a new process
        restarted.run(PEOPLE_COUNTER)
        telemetry, archive = rig.records_per_key("telemetry"), rig.records_per_key("archive")
    assert len(telemetry) == len(archive) == 2 * 2 * 96
    assert set(telemetry.values()) == set(archive.values()) == {1}


def test_a_bad_record_is_dead_lettered_and_the_run_goes_on(database: SqliteDatabase) -> None:
    dataset = day_of_data()
    _, (good,) = dataset.query(PEOPLE_COUNTER, "Building A", T0, END_OF_DAY, 0, 1)
    no_time = {**good, "id": "bad-no-time", "_id": "bad-no-time", "data": {**good["data"], "time": None}}
    wrong_types = {**good, "id": "bad-types", "_id": "bad-types", "data": {**good["data"], "change": "lots"}}
    dataset.add_records([no_time, wrong_types])
    with microshare_rig(database, dataset, END_OF_DAY) as rig:
        result = rig.forwarder().run(PEOPLE_COUNTER)
        letters = DeadLetterBox(rig.state).list(f"microshare:{PEOPLE_COUNTER}")
        per_key = rig.records_per_key()
    assert result.dead_lettered == 2
    assert sorted(letter["reason"] for letter in letters) == ["data.change must be an object", "record has no time"]
    assert len(per_key) == 2 * 2 * 96
    assert "bad-no-time" not in per_key and "bad-types" not in per_key


def test_a_record_repeated_on_two_pages_is_sent_once(database: SqliteDatabase) -> None:
    with microshare_rig(database, day_of_data(), END_OF_DAY, {"overlap_pages": True}, MICROSHARE_PAGE_SIZE="50") as rig:
        result = rig.forwarder().run(PEOPLE_COUNTER)
        per_key = rig.records_per_key()
    assert result.records > 2 * 2 * 96  # the repeats were fetched...
    assert len(per_key) == 2 * 2 * 96 and set(per_key.values()) == {1}  # ...and not sent twice


def test_paging_stops_on_an_empty_page_when_total_pages_promises_more(database: SqliteDatabase) -> None:
    with microshare_rig(
        database, day_of_data(), END_OF_DAY, {"inflate_total_pages": 5}, MICROSHARE_PAGE_SIZE="100"
    ) as rig:
        result = rig.forwarder().run(PEOPLE_COUNTER)
        views = [r for r in rig.standin.requests if r.path.startswith("/share/")]
    # 192 records per building = 2 pages of data, then one empty page, per building
    assert len(views) == 2 * 3
    assert result.hubs["telemetry"].sent == 2 * 2 * 96


def test_an_empty_answer_forwards_nothing_and_keeps_the_watermark(database: SqliteDatabase) -> None:
    with microshare_rig(database, day_of_data(), END_OF_DAY + timedelta(days=3)) as rig:
        result = rig.forwarder().run(PEOPLE_COUNTER, END_OF_DAY + timedelta(days=2), END_OF_DAY + timedelta(days=3))
    assert result.events == 0 and result.watermark_after is None


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried(database: SqliteDatabase, status: int) -> None:
    with microshare_rig(database, day_of_data(), END_OF_DAY) as rig:
        rig.standin.inject(Fault("view", status=status, times=2))
        result = rig.forwarder().run(PEOPLE_COUNTER)
    assert result.hubs["telemetry"].sent == 2 * 2 * 96


def test_a_lasting_outage_fails_the_run_without_moving_the_watermark(database: SqliteDatabase) -> None:
    with microshare_rig(database, day_of_data(), END_OF_DAY, MICROSHARE_PAGE_SIZE="100") as rig:
        rig.standin.inject(Fault("view", status=503, times=100, page=2))  # each building has 2 pages of 100
        forwarder = rig.forwarder(client=rig.client(attempts=2))
        with pytest.raises(Exception, match="HTTP 503 after the retries"):
            forwarder.run(PEOPLE_COUNTER)
        assert forwarder.watermark(PEOPLE_COUNTER) is None
        rig.standin.clear_faults()
        result = forwarder.run(PEOPLE_COUNTER)
        per_key = rig.records_per_key()
    assert result.hubs["telemetry"].skipped > 0  # page 1 went out in the failed run
    assert len(per_key) == 2 * 2 * 96 and set(per_key.values()) == {1}


def test_a_429_waits_as_long_as_retry_after_says(database: SqliteDatabase) -> None:
    import time

    with microshare_rig(database, day_of_data(), END_OF_DAY) as rig:
        rig.standin.inject(Fault("view", status=429, retry_after_seconds=1))
        began = time.monotonic()
        result = rig.forwarder().run(PEOPLE_COUNTER)
        waited = time.monotonic() - began
    assert waited >= 1.0
    assert result.hubs["telemetry"].sent == 2 * 2 * 96


def test_an_expired_token_is_renewed_once(database: SqliteDatabase) -> None:
    with microshare_rig(database, day_of_data(), END_OF_DAY) as rig:
        forwarder = rig.forwarder()
        forwarder.run(PEOPLE_COUNTER)
        rig.standin.revoke_tokens()
        rig.clock.now += timedelta(minutes=15)
        forwarder.run(PEOPLE_COUNTER)
        grants = rig.standin.token_grants
    assert grants == 2


def test_a_token_refused_twice_fails_clearly(database: SqliteDatabase) -> None:
    with microshare_rig(database, day_of_data(), END_OF_DAY) as rig:
        rig.standin.inject(Fault("view", status=401, times=2))
        with pytest.raises(Exception, match="a fresh token was refused too"):
            rig.forwarder().run(PEOPLE_COUNTER)


def test_wrong_credentials_fail_clearly_without_showing_them(database: SqliteDatabase) -> None:
    with (
        microshare_rig(database, day_of_data(), END_OF_DAY, MICROSHARE_PASSWORD="wrong-secret-value") as rig,
        pytest.raises(Exception, match="refused the credentials") as failure,
    ):
        rig.forwarder().run(PEOPLE_COUNTER)
    assert "wrong-secret-value" not in str(failure.value)


def test_every_instance_shares_one_token_through_the_state_store(database: SqliteDatabase) -> None:
    with microshare_rig(database, day_of_data(), END_OF_DAY) as rig:
        rig.forwarder().run(PEOPLE_COUNTER)
        rig.clock.now += timedelta(minutes=15)
        rig.forwarder(client=rig.client()).run(PEOPLE_COUNTER)  # a new client: another instance
        grants = rig.standin.token_grants
    assert grants == 1


def test_a_token_close_to_expiry_is_replaced_before_it_fails(database: SqliteDatabase) -> None:
    with microshare_rig(database, day_of_data(), END_OF_DAY, {"token_lifetime_seconds": 3600}) as rig:
        rig.forwarder().run(PEOPLE_COUNTER)
        rig.clock.now += timedelta(minutes=55)
        rig.forwarder(client=rig.client()).run(PEOPLE_COUNTER)
        grants = rig.standin.token_grants
    assert grants == 2


def test_malformed_json_is_fetched_again(database: SqliteDatabase) -> None:
    with microshare_rig(database, day_of_data(), END_OF_DAY) as rig:
        rig.standin.inject(Fault("view", malformed_json=True))
        result = rig.forwarder().run(PEOPLE_COUNTER)
    assert result.hubs["telemetry"].sent == 2 * 2 * 96


def test_malformed_json_twice_fails_the_run(database: SqliteDatabase) -> None:
    with microshare_rig(database, day_of_data(), END_OF_DAY) as rig:
        rig.standin.inject(Fault("view", malformed_json=True, times=2))
        with pytest.raises(Exception, match="malformed JSON"):
            rig.forwarder().run(PEOPLE_COUNTER)


def test_a_slow_answer_past_the_timeout_is_retried(database: SqliteDatabase) -> None:
    with microshare_rig(database, day_of_data(), END_OF_DAY, MICROSHARE_TIMEOUT_SECONDS="1") as rig:
        rig.standin.inject(Fault("view", delay_seconds=1.5))
        result = rig.forwarder().run(PEOPLE_COUNTER)
    assert result.hubs["telemetry"].sent == 2 * 2 * 96


def test_locations_come_from_the_clusters_of_the_configured_organisation_and_prefix(database: SqliteDatabase) -> None:
    dataset = MicroshareDataset.synthetic(
        T0, END_OF_DAY, locations=("Building A", "Building B", "Annex 1"), devices_per_location=1
    )
    with microshare_rig(database, dataset, END_OF_DAY, MICROSHARE_IDENTITY="Sensor Pulse Demo") as rig:
        assert rig.client().locations() == ["Annex 1", "Building A", "Building B"]
    with microshare_rig(database, dataset, END_OF_DAY, MICROSHARE_IDENTITY="Someone Else") as rig:
        assert rig.client().locations() == []
    with microshare_rig(database, dataset, END_OF_DAY, MICROSHARE_LOCATION_PREFIX="Building") as rig:
        assert rig.client().locations() == ["Building A", "Building B"]


def test_hourly_snapshots_go_whole_once_per_location_and_hour(database: SqliteDatabase) -> None:
    with microshare_rig(database, day_of_data(), END_OF_DAY + timedelta(minutes=5)) as rig:
        forwarder = rig.forwarder()
        first = forwarder.run(HOURLY_SNAPSHOT, T0, END_OF_DAY)
        rig.clock.now += timedelta(hours=1)
        again = forwarder.run(HOURLY_SNAPSHOT)  # the overlap re-reads the last hour
        bodies = rig.bodies()
    assert first.hubs["telemetry"].sent == 2 * 24
    assert again.hubs["telemetry"].sent == 0
    assert {body["recType"] for body in bodies} == {HOURLY_SNAPSHOT}
    assert all(body["objs"][0]["data"]["line"] for body in bodies)
    assert len({(body["location"], body["from"]) for body in bodies}) == 2 * 24


def test_dedup_records_are_forgotten_once_no_run_can_fetch_them_again(database: SqliteDatabase) -> None:
    dataset = day_of_data(3, locations=("Building A",))
    with microshare_rig(
        database,
        dataset,
        T0 + timedelta(hours=1),
        MICROSHARE_DEDUP_RETENTION_HOURS="6",
        MICROSHARE_OVERLAP_MINUTES="60",
    ) as rig:
        forwarder = rig.forwarder()
        sizes = []
        for _ in range(4 * 48):  # two days of 15-minute runs
            rig.clock.now += timedelta(minutes=15)
            forwarder.run(PEOPLE_COUNTER)
            sizes.append(len(rig.state.query(DELIVERIES_TABLE)))
        per_key = rig.records_per_key()
    assert set(per_key.values()) == {1}
    # Keys go by whole days of event time, once a day is older than the retention: never more than the
    # current and the previous day for 2 devices, and the same size at the same time each day.
    assert max(sizes) <= 2 * 2 * 96
    assert sizes[-1] == sizes[-97]


def test_no_log_line_shows_a_password_api_key_or_token(
    database: SqliteDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with microshare_rig(database, day_of_data(), END_OF_DAY) as rig:
        rig.standin.inject(Fault("view", status=401))
        rig.standin.inject(Fault("token", status=503))
        rig.forwarder().run(PEOPLE_COUNTER)
        tokens = [e.properties["access_token"] for e in rig.state.query("microshare")]
    text = "\n".join(record.getMessage() + repr(record.__dict__) for record in caplog.records)
    assert tokens
    for secret in (PASSWORD, API_KEY, *tokens):
        assert secret not in text

"""The Cosmos change-feed pull, against recorded service responses (the Cosmos stand-in has no change feed).

A small HTTP server on 127.0.0.1 answers the SDK with the exchanges in tests/recordings: the real
azure-cosmos client builds the requests and parses the answers, so what is checked is our adapter's use
of the SDK's pull model: from the beginning, resuming from the token, 304 meaning nothing new, a start
moment, and the request charge of every response."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.cosmos import CosmosClient

from shared.storage.azure.cosmos_documents import CosmosDocumentStore
from shared.storage.names import PARTITION_KEY_PATHS, READINGS
from shared.storage.ports import StateStore
from shared.storage.sqlite.database import SqliteDatabase
from shared.storage.sqlite.state import SqliteStateStore
from tests.cosmos_http import CONTAINER_PATH, RECORDING, RecordedCosmos, RecordedCosmosHandler, serving

DOCS_PATH = f"{CONTAINER_PATH}/docs/"


class FeedReplay(RecordedCosmos):
    def __init__(self) -> None:
        super().__init__(_FeedHandler)
        self.feed_requests: list[dict[str, str]] = []
        self.later_written = False  # flips when the test "writes" the later documents


class _FeedHandler(RecordedCosmosHandler):
    server: FeedReplay

    def answer_documents(self, path: str) -> None:
        if path != DOCS_PATH:
            super().answer_documents(path)
            return
        seen = {name: self.headers.get(name, "") for name in ("A-IM", "If-None-Match", "If-Modified-Since")}
        self.server.feed_requests.append(seen)
        first, later = RECORDING["feed"]["first"], RECORDING["feed"]["later"]
        since = seen["If-None-Match"]
        if since == "" and seen["If-Modified-Since"]:
            page, etag = None, first["etag"]  # from a moment after everything recorded: nothing yet
        elif since == "":
            page, etag = first, first["etag"]
        elif since == first["etag"] and self.server.later_written:
            page, etag = later, later["etag"]
        else:
            page, etag = None, since
        if page is None:
            self.answer(304, None, {"etag": etag})
        else:
            body = {"_rid": "gAABAIAAAAE=", "Documents": page["documents"], "_count": len(page["documents"])}
            self.answer(200, body, {"etag": page["etag"]}, charge=page["charge"])


@pytest.fixture
def replay() -> Iterator[FeedReplay]:
    with serving(FeedReplay()) as server:
        yield server


@pytest.fixture
def store(replay: FeedReplay) -> CosmosDocumentStore:
    client = CosmosClient(replay.endpoint, credential="a2V5", retry_total=1, connection_timeout=5)
    return CosmosDocumentStore(client, "sensorpulse", PARTITION_KEY_PATHS)


def test_pull_from_the_beginning_then_resume_from_the_token(store: CosmosDocumentStore, replay: FeedReplay) -> None:
    first = store.read_changes(READINGS, None, 100)
    assert [d["id"] for d in first.documents] == ["r1", "r2", "r3"]
    assert first.continuation is not None

    nothing_new = store.read_changes(READINGS, first.continuation, 100)
    assert nothing_new.documents == []
    assert nothing_new.continuation == first.continuation  # a 304 keeps the position

    replay.later_written = True
    later = store.read_changes(READINGS, first.continuation, 100)
    assert [(d["id"], d["value"]) for d in later.documents] == [("r4", 24.5), ("r1", 99.0)]  # r1 was replaced
    assert later.continuation not in (None, first.continuation)
    assert store.read_changes(READINGS, later.continuation, 100).documents == []

    sent = replay.feed_requests
    assert all(r["A-IM"] == "Incremental Feed" for r in sent)
    assert [r["If-None-Match"] for r in sent] == ["", '"4"', '"4"', '"6"']


def test_request_charges_of_feed_reads_are_recorded(store: CosmosDocumentStore, replay: FeedReplay) -> None:
    store.read_changes(READINGS, None, 100)
    replay.later_written = True
    batch = store.read_changes(READINGS, None, 100)
    store.read_changes(READINGS, batch.continuation, 100)

    requests, units = store.charges.snapshot()[(READINGS, "feed")]
    assert requests >= 3
    assert units >= 2.38 + 2.38 + 2.05


def test_end_of_feed_starts_from_that_moment(store: CosmosDocumentStore, replay: FeedReplay) -> None:
    now = store.end_of_feed(READINGS)

    batch = store.read_changes(READINGS, now, 100)

    assert batch.documents == []
    assert batch.continuation == now  # nothing read yet: the moment is kept, not lost
    assert replay.feed_requests[-1]["If-Modified-Since"] != ""


def test_the_continuation_survives_in_the_state_store_across_restarts(replay: FeedReplay, tmp_path: Path) -> None:
    """What devhost does with --backend azure: the position lives in the state store, not in memory."""
    database = SqliteDatabase.in_directory(tmp_path)
    state: StateStore = SqliteStateStore(database)
    try:
        client = CosmosClient(replay.endpoint, credential="a2V5", retry_total=1)
        first = CosmosDocumentStore(client, "sensorpulse", PARTITION_KEY_PATHS).read_changes(READINGS, None, 100)
        state.upsert("devhostleases", "sensorpulse", READINGS, {"continuation": first.continuation})

        replay.later_written = True
        restarted = CosmosDocumentStore(
            CosmosClient(replay.endpoint, credential="a2V5"), "sensorpulse", PARTITION_KEY_PATHS
        )
        lease = state.get("devhostleases", "sensorpulse", READINGS)
        assert lease is not None
        resumed = restarted.read_changes(READINGS, str(lease.properties["continuation"]), 100)
        assert [d["id"] for d in resumed.documents] == ["r4", "r1"]
    finally:
        database.close()

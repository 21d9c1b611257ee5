"""Delivery to several event hubs: each hub keeps its own record of what reached it, so a failing hub neither
holds the others back nor makes them receive the same events again when the delivery is retried."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shared.ops.log_context import app_logger
from shared.readings.dead_letters import DeadLetter, DeadLetterBox
from shared.readings.reading import format_timestamp
from shared.settings import HUB_NAME_PATTERN, HUB_NAME_RULE
from shared.storage.names import DELIVERIES_TABLE
from shared.storage.ports import EntityWrite, EventPublisher, OutboundEvent, StateStore, StorageError

logger = app_logger(__name__)


# Table Storage refuses these in PartitionKey and RowKey.
_FORBIDDEN_IN_KEYS = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")
MAX_PLAIN_KEY_CHARS = 200  # keys are capped at 1 KiB; 200 characters of any UTF-16 text stay under it
_DIGEST_PREFIX = "sha256-"

KeyedEvent = tuple[str, OutboundEvent]  # (dedup key, event)


@dataclass(frozen=True, slots=True)
class HubDelivery:
    """One hub's part of a delivery. `too_large` events can never be sent: they are parked as dead letters."""

    sent: int = 0
    skipped: int = 0  # delivered by an earlier call
    too_large: list[KeyedEvent] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class FanoutResult:
    """Per-hub outcomes of one delivery, and which of its keys a watermark may move past."""

    hubs: dict[str, HubDelivery]
    everywhere: frozenset[str]  # keys of this call that every hub has now had (or refused as too large)

    @property
    def failed(self) -> dict[str, str]:
        """Hub name to error message, for the hubs whose publish raised."""
        return {hub: d.error for hub, d in self.hubs.items() if d.error is not None}


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DeliveryRecords:
    """Which dedup keys of a stream reached a hub: one entity per key, in one partition per hub and stream."""

    def __init__(self, state: StateStore, table: str = DELIVERIES_TABLE) -> None:
        self._state = state
        self._table = table

    def keys(self, hub: str, stream: str) -> set[str]:
        """The table keys recorded for `stream` on `hub` (see _table_key), in one partition query."""
        return {entity.row_key for entity in self._state.query(self._table, _partition_key(hub, stream))}

    def add(self, hub: str, stream: str, keys: Sequence[str], too_large: Set[str], now: datetime) -> None:
        """Record `keys` as delivered to `hub`, marking those in `too_large` as refused by it."""
        partition, delivered_at = _partition_key(hub, stream), format_timestamp(now)
        # Insert-only writes: a conflict means a concurrent delivery recorded the key first, which is as good.
        self._state.write_many(
            self._table,
            [
                EntityWrite(partition, _table_key(key), {"delivered_at": delivered_at, "too_large": key in too_large})
                for key in keys
            ],
        )

    def forget(self, hub: str, stream: str) -> int:
        """Delete every record of `stream` on `hub`; returns how many went."""
        partition = _partition_key(hub, stream)
        removed = 0
        for entity in self._state.query(self._table, partition):
            self._state.delete(self._table, partition, entity.row_key)
            removed += 1
        return removed


class HubFanout:
    """Sends a stream's events to several hubs, remembering per hub and stream which dedup keys arrived.

    Delivery is at least once: a key is recorded only after its publish returned, so a hub that failed part-way,
    or a crash before the record, means a few events go to that hub again on the retry. Events a hub refuses as
    too large are recorded as delivered too: they can never be sent, and retrying them on every call would keep
    the watermark from ever moving; each is parked as a dead letter (source `eventhub:<hub>`) with its reason."""

    def __init__(
        self,
        publishers: Mapping[str, EventPublisher],
        state: StateStore,
        table: str = DELIVERIES_TABLE,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if not publishers:
            raise ValueError("HubFanout needs at least one hub")
        for hub in publishers:
            if not HUB_NAME_PATTERN.fullmatch(hub):
                raise ValueError(f"not an event hub name: a hub name is {HUB_NAME_RULE}")
        self._publishers = dict(publishers)
        self._records = DeliveryRecords(state, table)
        self._clock = clock

    @property
    def hubs(self) -> list[str]:
        return list(self._publishers)

    def open(self, stream: str, letters: DeadLetterBox, failed: dict[str, str] | None = None) -> FanoutSession:
        """A session for one run over `stream`: each hub's delivery records are read once, here. Events a hub
        refuses as too large are parked in `letters`. Sessions of one run that share `failed` do not try again
        a hub that failed in any of them."""
        recorded = {hub: self._records.keys(hub, stream) for hub in self._publishers}
        return FanoutSession(
            stream,
            recorded,
            publishers=self._publishers,
            records=self._records,
            letters=letters,
            clock=self._clock,
            failed={} if failed is None else failed,
        )

    def forget(self, stream: str) -> int:
        """Delete every delivery record of `stream` on every hub; returns how many went."""
        return sum(self._records.forget(hub, stream) for hub in self._publishers)


class FanoutSession:
    """One run's deliveries over one stream. A hub whose publish failed is not tried again in the same session:
    it gets everything it missed in the next run, and meanwhile the other hubs go on without waiting for it."""

    def __init__(
        self,
        stream: str,
        recorded: dict[str, set[str]],
        *,
        publishers: Mapping[str, EventPublisher],
        records: DeliveryRecords,
        letters: DeadLetterBox,
        clock: Callable[[], datetime],
        failed: dict[str, str],
    ) -> None:
        self._stream = stream
        self._recorded = recorded
        self._publishers = publishers
        self._records = records
        self._letters = letters
        self._clock = clock
        self._failed = failed

    @property
    def failed(self) -> dict[str, str]:
        """Hub name to the error of its failed publish in this session."""
        return dict(self._failed)

    def deliver(self, events: Sequence[KeyedEvent]) -> FanoutResult:
        """Publish to each hub what it has not had yet. A hub whose publish raises StorageError is reported with
        the error and keeps its records unchanged; the other hubs go on. A key repeated in `events` is sent once.
        State-store errors propagate: they are not one hub's problem, and retrying the run is safe."""
        first: dict[str, OutboundEvent] = {}
        for key, event in events:
            first.setdefault(key, event)
        unique = list(first.items())
        everywhere = set(first)
        hubs: dict[str, HubDelivery] = {}
        for hub, publisher in self._publishers.items():
            hubs[hub], delivered = self._deliver_to(hub, publisher, unique)
            everywhere &= delivered
        return FanoutResult(hubs, frozenset(everywhere))

    def _deliver_to(
        self, hub: str, publisher: EventPublisher, events: list[KeyedEvent]
    ) -> tuple[HubDelivery, set[str]]:
        recorded = self._recorded[hub]
        done = {key for key, _ in events if _table_key(key) in recorded}
        pending = [(key, event) for key, event in events if key not in done]
        if not pending:
            return HubDelivery(skipped=len(done)), done
        if hub in self._failed:
            return HubDelivery(skipped=len(done), error=f"not tried again this run: {self._failed[hub]}"), done
        try:
            outcome = publisher.publish(hub, [event for _, event in pending])
        except StorageError as error:
            self._failed[hub] = str(error)
            logger.warning(
                "delivery to event hub %s failed, will retry: %s",
                hub,
                error,
                extra={"hub": hub, "stream": self._stream},
            )
            return HubDelivery(skipped=len(done), error=str(error)), done
        refused = {id(event) for event in outcome.too_large}  # the port returns the very objects it was given
        too_large = [(key, event) for key, event in pending if id(event) in refused]
        keys = [key for key, _ in pending]
        self._records.add(hub, self._stream, keys, {key for key, _ in too_large}, self._clock())
        recorded.update(_table_key(key) for key in keys)
        if too_large:
            self._letters.park(
                [
                    DeadLetter(f"eventhub:{hub}", "event larger than the hub accepts", event.body)
                    for _, event in too_large
                ]
            )
        return HubDelivery(outcome.sent, len(done), too_large), done | set(keys)


def _partition_key(hub: str, stream: str) -> str:
    return f"{hub}|{_table_key(stream)}"


def _table_key(text: str) -> str:
    """`text` itself when Table Storage accepts it as a key, else its digest. Plain text that starts like a
    digest is hashed too, so two different texts never share a key."""
    if len(text) <= MAX_PLAIN_KEY_CHARS and not text.startswith(_DIGEST_PREFIX) and not _FORBIDDEN_IN_KEYS.search(text):
        return text
    return _DIGEST_PREFIX + hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()

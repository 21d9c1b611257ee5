"""cosmosDBTrigger: polls the embedded change feed of a container and hands batches to the function.

As the Cosmos DB trigger does: the feed position is a lease (one per lease prefix, database and container),
kept in the state store (table `devhostleases`, so devhost never touches the real trigger's lease
documents when it runs against a shared Cosmos account), a new lease starts at the end of the feed unless
startFromBeginning is set, a batch holds at most maxItemsPerInvocation documents, and the lease moves on
only after the function returns, or after its retry policy gives up. A stop while a batch is being retried
leaves the lease where it was, so the batch is delivered again on the next start.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any, Protocol

import azure.functions as func

from devhost.app.function_index import FunctionSpec
from devhost.app.invoker import Invoker
from shared.storage.ports import ChangeBatch, StateStore

logger = logging.getLogger("devhost")

FEED_POLL_DELAY_SETTING = "DEVHOST_FEED_POLL_DELAY_MS"
DEFAULT_FEED_POLL_DELAY_MS = 500
DEFAULT_MAX_ITEMS = 100  # the trigger's default maxItemsPerInvocation
LEASES_TABLE = "devhostleases"


class ChangeFeedSource(Protocol):
    """What the driver needs of a document store: the embedded one, or Cosmos DB's pull model."""

    def read_changes(self, container: str, continuation: str | None, max_items: int) -> ChangeBatch: ...

    def end_of_feed(self, container: str) -> str | None: ...


def _document(body: dict[str, Any]) -> func.Document:
    """The Document the worker hands the function, around the decoded body itself: what from_dict makes, without
    from_dict's copy through UserDict's per-key __setitem__ (a third of a large batch's delivery)."""
    document = func.Document.__new__(func.Document)
    document.data = body
    return document


class ChangeFeedDriver:
    def __init__(
        self,
        spec: FunctionSpec,
        invoker: Invoker,
        documents: ChangeFeedSource,
        leases: StateStore,
        stop: threading.Event,
        environ: Mapping[str, str],
    ) -> None:
        trigger = spec.trigger
        self.spec = spec
        self.container = str(trigger["containerName"])
        prefix = str(trigger.get("leaseContainerPrefix") or "")
        self.lease_partition = f"{prefix}{trigger.get('databaseName', '')}"
        self.max_items = int(trigger.get("maxItemsPerInvocation") or DEFAULT_MAX_ITEMS)
        delay_ms = trigger.get("feedPollDelay") or environ.get(FEED_POLL_DELAY_SETTING) or DEFAULT_FEED_POLL_DELAY_MS
        self.poll_delay = int(delay_ms) / 1000
        self._start_from_beginning = bool(trigger.get("startFromBeginning", False))
        self._invoker = invoker
        self._documents = documents
        self._leases = leases
        self._stop = stop
        self.continuation: str | None = None

    def acquire_lease(self) -> None:
        """Read the lease, or create it; done before any timer runs so no early write is missed."""
        lease = self._leases.get(LEASES_TABLE, self.lease_partition, self.container)
        if lease is not None:
            stored = lease.properties.get("continuation")
            self.continuation = stored if isinstance(stored, str) and stored else None
            return
        self.continuation = None if self._start_from_beginning else self._documents.end_of_feed(self.container)
        self._save_lease()

    def _save_lease(self) -> None:
        properties = {"continuation": self.continuation or "", "owner": "devhost"}
        self._leases.upsert(LEASES_TABLE, self.lease_partition, self.container, properties)

    def poll_once(self) -> int:
        """Deliver at most one batch; returns how many documents it held."""
        batch = self._documents.read_changes(self.container, self.continuation, self.max_items)
        if not batch.documents:
            return 0
        documents = func.DocumentList([_document(doc) for doc in batch.documents])
        name = str(self.spec.trigger["name"])
        succeeded = self._invoker.call_with_retry(self.spec, lambda: {name: documents})
        if not succeeded and self._stop.is_set():
            return 0  # stopped mid-retry: keep the lease, deliver again after restart
        if not succeeded:
            logger.error(
                "Functions.%s failed on %d changes after its retries; moving past them, as the host does",
                self.spec.name,
                len(batch.documents),
            )
        self.continuation = batch.continuation
        self._save_lease()
        return len(batch.documents)

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                delivered = self.poll_once()
            except Exception:
                logger.exception("change feed of %s could not be read; trying again", self.container)
                delivered = 0
            if delivered == 0 and self._stop.wait(self.poll_delay):
                return

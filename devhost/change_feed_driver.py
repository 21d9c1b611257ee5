"""cosmosDBTrigger: polls the embedded change feed of a container and hands batches to the function.

As the Cosmos DB trigger does: the continuation lives in the lease container (one lease document per
prefix, database and container), a new lease starts at the end of the feed unless startFromBeginning is
set, a batch holds at most maxItemsPerInvocation documents, and the lease moves on only after the function
returns, or after its retry policy gives up. A stop while a batch is being retried leaves the lease where
it was, so the batch is delivered again on the next start.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

import azure.functions as func

from devhost.function_index import FunctionSpec
from devhost.invoker import Invoker
from shared.storage.names import LEASES
from shared.storage.sqlite_documents import SqliteDocumentStore

logger = logging.getLogger("devhost")

FEED_POLL_DELAY_SETTING = "DEVHOST_FEED_POLL_DELAY_MS"
DEFAULT_FEED_POLL_DELAY_MS = 500
DEFAULT_MAX_ITEMS = 100  # the trigger's default maxItemsPerInvocation


class ChangeFeedDriver:
    def __init__(
        self,
        spec: FunctionSpec,
        invoker: Invoker,
        documents: SqliteDocumentStore,
        stop: threading.Event,
        environ: Mapping[str, str],
    ) -> None:
        trigger = spec.trigger
        self.spec = spec
        self.container = str(trigger["containerName"])
        self.lease_container = str(trigger.get("leaseContainerName") or LEASES)
        prefix = str(trigger.get("leaseContainerPrefix") or "")
        self.lease_id = f"{prefix}{trigger.get('databaseName', '')}.{self.container}"
        self.max_items = int(trigger.get("maxItemsPerInvocation") or DEFAULT_MAX_ITEMS)
        delay_ms = trigger.get("feedPollDelay") or environ.get(FEED_POLL_DELAY_SETTING) or DEFAULT_FEED_POLL_DELAY_MS
        self.poll_delay = int(delay_ms) / 1000
        self._start_from_beginning = bool(trigger.get("startFromBeginning", False))
        self._invoker = invoker
        self._documents = documents
        self._stop = stop
        self.continuation: str | None = None

    def acquire_lease(self) -> None:
        """Read the lease, or create it; done before any timer runs so no early write is missed."""
        lease = self._documents.read(self.lease_container, self.lease_id, self.lease_id)
        if lease is not None:
            self.continuation = lease.get("continuation")
            return
        self.continuation = None if self._start_from_beginning else self._documents.end_of_feed(self.container)
        self._save_lease()

    def _save_lease(self) -> None:
        lease = {"id": self.lease_id, "continuation": self.continuation, "owner": "devhost"}
        self._documents.upsert_many(self.lease_container, [lease])

    def poll_once(self) -> int:
        """Deliver at most one batch; returns how many documents it held."""
        batch = self._documents.read_changes(self.container, self.continuation, self.max_items)
        if not batch.documents:
            return 0
        documents = func.DocumentList([func.Document.from_dict(doc) for doc in batch.documents])
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

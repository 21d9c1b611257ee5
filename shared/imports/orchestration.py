"""The import orchestration: one instance per file version (its id from the blob's name and ETag), reading the
file chunk after chunk, each chunk an activity retried with backoff, its progress in the custom status, and an
end step that writes the error report and the result.

Chunks run one after another (the next one starts where the last one stopped reading). Every
CHUNKS_PER_GENERATION chunks the orchestration continues as new with its totals, so its history, replayed on every
step, stays short however long the file. It is deterministic: no clock, no I/O, only its input and the activities'
outputs.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import azure.durable_functions as df

from shared.imports.importer import ChunkResult, ImportJob, Totals
from shared.microshare.backfill import ExponentialRetryOptions

ORCHESTRATOR = "import_file"
CHUNK_ACTIVITY = "import_chunk"
FINISH_ACTIVITY = "import_finish"

CHUNKS_PER_GENERATION = 50
RETRY = ExponentialRetryOptions(2_000, 6, 2.0, 60_000)  # about 1 minute of storage trouble before failing
FAILED_REASON = "storage kept failing during the import; upload the file again to import the rest"


def progress(job: ImportJob, totals: Totals, offset: int, done: bool) -> dict[str, Any]:
    """The custom status: rows so far and, for an uncompressed file, how far through it the import is."""
    status: dict[str, Any] = {"file": job.name, **totals.to_json(), "done": done}
    if not job.layout.gzip and job.size:
        status["percent"] = 100 if done else min(99, int(offset * 100 / job.size))
    return status


def start_input(job: ImportJob) -> dict[str, Any]:
    return {"job": job.to_json(), "position": job.start.to_json(), "totals": Totals().to_json()}


def orchestrate(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    state = context.get_input()
    if not isinstance(state, dict):
        raise ValueError("the import input must be {job, position, totals}")
    job = ImportJob.from_json(state["job"])
    position, totals = state["position"], Totals.from_json(state["totals"])
    refused: str | None = None
    failed: str | None = None
    for _ in range(CHUNKS_PER_GENERATION):
        context.set_custom_status(progress(job, totals, int(position["offset"]), False))
        request = {"job": job.to_json(), "position": position, "totals": totals.to_json()}
        try:
            output = yield context.call_activity_with_retry(CHUNK_ACTIVITY, RETRY, request)
        except Exception:  # the activity failed on every attempt: end the import and say so
            failed = FAILED_REASON
            break
        result = ChunkResult.from_json(output)
        totals = totals + result.totals
        refused = result.refused
        if result.next is None:
            break
        position = result.next.to_json()
    else:
        context.continue_as_new({"job": job.to_json(), "position": position, "totals": totals.to_json()})
        return {}
    ending = {"job": job.to_json(), "totals": totals.to_json(), "refused": refused, "failed": failed}
    record: dict[str, Any] = yield context.call_activity_with_retry(FINISH_ACTIVITY, RETRY, ending)
    context.set_custom_status(progress(job, totals, job.size, True))
    return record

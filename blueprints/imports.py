"""Bulk import: a file of readings dropped into the `imports` container (by storage tools, or uploaded with
POST /api/imports) raises BlobCreated; the blob trigger (Event Grid source) looks at it and starts its Durable
orchestration, which imports it in chunks and writes `<name>.errors.csv` and `<name>.result.json` to
`imports-results`. GET /api/imports lists recent imports, GET /api/imports/{id} shows one with its progress."""

import asyncio
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob

from blueprints.query_params import bounded_int_param
from blueprints.responses import error_response, json_response
from shared.app import services
from shared.imports.importer import ChunkResult, ImportJob, Skipped, Totals, UploadRefused
from shared.imports.names import INSTANCE_ID, instance_id
from shared.imports.orchestration import CHUNK_ACTIVITY, FINISH_ACTIVITY, ORCHESTRATOR, orchestrate, start_input
from shared.imports.parsing import Position
from shared.imports.records import MAX_LISTED
from shared.ops.invocation import observed, observed_function
from shared.ops.log_context import app_logger

logger = app_logger(__name__)
bp = df.Blueprint()

_TAKEN = (
    df.OrchestrationRuntimeStatus.Running,
    df.OrchestrationRuntimeStatus.Pending,
    df.OrchestrationRuntimeStatus.ContinuedAsNew,
    df.OrchestrationRuntimeStatus.Completed,
)


def _status_url(req: func.HttpRequest, import_id: str) -> str:
    return f"{req.url.split('/api/', 1)[0]}/api/imports/{import_id}"


@bp.function_name("import_blob")
@bp.blob_trigger(arg_name="client", path="imports/{name}", connection="IMPORTS", source=func.BlobSource.EVENT_GRID)
@bp.durable_client_input(client_name="starter")
@observed_function("import_blob", trigger="blob")
async def import_blob(client: blob.BlobClient, starter: df.DurableOrchestrationClient, context: func.Context) -> None:
    # The client binding: the trigger never downloads the file; the importer reads what it needs, in pieces.
    name = str(client.blob_name)
    found = await asyncio.to_thread(services().importer.examine, name)
    if not isinstance(found, ImportJob):
        if isinstance(found, Skipped):
            logger.info("import of %s: this version is %s already", name, found.record.state)
        return
    status = await starter.get_status(found.id)
    if status.runtime_status in _TAKEN:
        logger.info("import of %s: %s is %s already", name, found.id, status.runtime_status.name)
        return
    await starter.start_new(ORCHESTRATOR, found.id, start_input(found))
    logger.info("import of %s started: %s", name, found.id, extra={"event": "import_started", "instance_id": found.id})


@bp.function_name("upload_import")
@bp.route(route="api/imports", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@observed_function("upload_import", trigger="http")
def upload_import(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    try:
        stored = services().importer.upload(req.params.get("name"), req.get_body())
    except UploadRefused as refused:
        return error_response(refused.status, refused.message)
    import_id = instance_id(stored.name, stored.etag)
    url = _status_url(req, import_id)
    body = {"id": import_id, "name": stored.name, "etag": stored.etag, "size": stored.size, "statusUrl": url}
    return json_response(body, 202, {"Location": url, "Retry-After": "2"})


@bp.function_name("list_imports")
@bp.route(route="api/imports", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@observed_function("list_imports", trigger="http")
def list_imports(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    try:
        limit = bounded_int_param(req, "limit", 50, 1, MAX_LISTED)
    except ValueError as invalid:
        return error_response(400, str(invalid))
    records = services().importer.log.recent(limit)
    return json_response({"items": [record.to_json() for record in records]})


@bp.function_name("import_status")
@bp.route(route="api/imports/{import_id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="starter")
@observed_function("import_status", trigger="http")
async def import_status(
    req: func.HttpRequest, starter: df.DurableOrchestrationClient, context: func.Context
) -> func.HttpResponse:
    import_id = req.route_params.get("import_id", "")
    if not INSTANCE_ID.fullmatch(import_id):
        return error_response(400, "not an import id (imp- and 32 hexadecimal digits)")
    record = await asyncio.to_thread(services().importer.log.get, import_id)
    if record is None:
        return error_response(404, f"no import {import_id}")
    status = await starter.get_status(import_id)
    running = None if status.runtime_status is None else status.runtime_status.name
    return json_response({**record.to_json(), "runtimeStatus": running, "progress": status.custom_status})


@bp.orchestration_trigger(context_name="context", orchestration=ORCHESTRATOR)
def import_file(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    result = yield from orchestrate(context)
    return result


@bp.activity_trigger(input_name="request", activity=CHUNK_ACTIVITY)
def import_chunk(request: dict[str, Any]) -> dict[str, Any]:
    job = ImportJob.from_json(request["job"])
    with observed(CHUNK_ACTIVITY, None, trigger="activity", instance_id=job.id):
        position = Position.from_json(request["position"])
        before = Totals.from_json(request["totals"])
        result: ChunkResult = services().importer.import_chunk(job, position, before)
        return result.to_json()


@bp.activity_trigger(input_name="ending", activity=FINISH_ACTIVITY)
def import_finish(ending: dict[str, Any]) -> dict[str, Any]:
    job = ImportJob.from_json(ending["job"])
    with observed(FINISH_ACTIVITY, None, trigger="activity", instance_id=job.id):
        totals = Totals.from_json(ending["totals"])
        record = services().importer.finish(job, totals, ending.get("refused"), ending.get("failed"))
        return record.to_json()

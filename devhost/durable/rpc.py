"""The Durable extension's HTTP API on devhost's own server, and the durableClient binding that points at it.

The Python client (DurableOrchestrationClient) calls `{rpcBaseUrl}orchestrators/{name}[/{instanceId}]` and
`{rpcBaseUrl}instances/...`; the management URLs it hands out (statusQueryGetUri and the rest) are the same
API under /runtime/webhooks/durabletask. devhost serves both from that one path: rpcBaseUrl is
http://127.0.0.1:{port}/runtime/webhooks/durabletask/. Routes, status codes and payloads follow the
extension's HttpApiHandler. Starting an instance whose id is taken by a Pending or Running instance is
refused with 409, the extension's default (overridableExistingInstanceStates = NonRunningStates); a
finished instance with that id is replaced. Rewind, restart, suspend and resume answer 501.

With `--require-keys` the API takes the extension's system key (or the master key), and every URL handed out
(creation and management URLs, requiredQueryStringParameters) carries it as `code=`, as in Azure. The Python
client sends no key on its RPC calls, so rpcBaseUrl then points at a second, loopback-only listener that takes
none, as the extension's local RPC endpoint in Azure does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from devhost.durable.engine import DurableRuntime, OrchestratorNotFound
from devhost.durable.history import parse_timestamp
from devhost.durable.status import status_payload
from devhost.durable.store import InstanceExists, InstanceQuery, RuntimeStatus
from devhost.http.front import WebhookAnswer, WebhookRequest

WEBHOOK_ROOT = "runtime/webhooks/durabletask"
INSTANCE_PLACEHOLDER = "INSTANCEID"
DEFAULT_CONNECTION = "Storage"
_NOT_SUPPORTED = ("rewind", "restart", "suspend", "resume")


def _json(status: int, document: Any, headers: Mapping[str, str] | None = None) -> WebhookAnswer:
    body = json.dumps(document).encode()
    return WebhookAnswer(status, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, body)


def _empty(status: int) -> WebhookAnswer:
    return WebhookAnswer(status, {}, b"")


def _error(status: int, message: str, exception: str | None = None) -> WebhookAnswer:
    document = {"Message": message}
    if exception is not None:
        document |= {"ExceptionMessage": exception, "ExceptionType": "System.ArgumentException"}
    return _json(status, document)


def _flag(query: Mapping[str, list[str]], name: str) -> bool | None:
    """.NET bool.TryParse: true/false in any case, anything else is absent."""
    values = query.get(name)
    if not values:
        return None
    value = values[0].strip().lower()
    return True if value == "true" else False if value == "false" else None


def _time(query: Mapping[str, list[str]], name: str) -> datetime | None:
    values = query.get(name)
    if not values:
        return None
    try:
        return parse_timestamp(values[0])
    except ValueError:
        return None


def _statuses(query: Mapping[str, list[str]]) -> frozenset[RuntimeStatus]:
    names = [part for value in query.get("runtimeStatus", []) for part in value.split(",")]
    return frozenset(RuntimeStatus(name) for name in names if name in RuntimeStatus._value2member_map_)


class DurableHttpApi:
    def __init__(
        self,
        runtime: DurableRuntime,
        origin: Callable[[], str],
        rpc_origin: Callable[[], str],
        system_key: str | None = None,
    ) -> None:
        """origin: how users reach devhost (http://localhost:7071); rpc_origin: the loopback address for RPC;
        system_key: the key the handed-out URLs carry (None: keys are not required)."""
        self._runtime = runtime
        self._origin = origin
        self._rpc_origin = rpc_origin
        self._system_key = system_key

    # -- the durableClient input binding ---------------------------------------------------------------

    def client_binding(self, binding: Mapping[str, Any]) -> str:
        """The JSON string the extension passes for a durableClient binding (its OrchestrationClientInputData)."""
        hub = str(binding.get("taskHub") or self._runtime.config.hub_name)
        connection = binding.get("connectionName")
        webhook = f"{self._origin()}/{WEBHOOK_ROOT}"
        start = f"{webhook}/orchestrators/{{functionName}}[/{{instanceId}}]"
        code = self._code()
        return json.dumps(
            {
                "taskHubName": hub,
                "connectionName": connection,
                "creationUrls": {
                    "createNewInstancePostUri": f"{start}?{code}",
                    "createAndWaitOnNewInstancePostUri": (
                        f"{start}?timeout={{timeoutInSeconds}}&pollingInterval={{intervalInSeconds}}&{code}"
                    ),
                },
                "managementUrls": self._management_urls(self._origin(), INSTANCE_PLACEHOLDER, hub, connection),
                "baseUrl": webhook,
                "requiredQueryStringParameters": code,
                "rpcBaseUrl": f"{self._rpc_origin()}/{WEBHOOK_ROOT}/",
            }
        )

    def _code(self) -> str:
        """`code=<system key>` when keys are required, else nothing."""
        return "" if self._system_key is None else f"code={quote(self._system_key, safe='')}"

    def _management_urls(self, origin: str, instance_id: str, hub: str, connection: str | None) -> dict[str, str]:
        path_id = instance_id if instance_id == INSTANCE_PLACEHOLDER else quote(instance_id, safe="")
        instance = f"{origin}/{WEBHOOK_ROOT}/instances/{path_id}"
        query = f"taskHub={quote(hub)}&connection={quote(connection or DEFAULT_CONNECTION)}"
        if self._system_key is not None:
            query += f"&{self._code()}"
        return {
            "id": instance_id,
            "statusQueryGetUri": f"{instance}?{query}",
            "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{query}",
            "terminatePostUri": f"{instance}/terminate?reason={{text}}&{query}",
            "rewindPostUri": f"{instance}/rewind?reason={{text}}&{query}",
            "purgeHistoryDeleteUri": f"{instance}?{query}",
            "restartPostUri": f"{instance}/restart?{query}",
            "suspendPostUri": f"{instance}/suspend?reason={{text}}&{query}",
            "resumePostUri": f"{instance}/resume?reason={{text}}&{query}",
        }

    # -- the HTTP API ----------------------------------------------------------------------------------

    def handles(self, path: str) -> bool:
        lowered = path.lower()
        return lowered == WEBHOOK_ROOT or lowered.startswith(WEBHOOK_ROOT + "/")

    def handle(self, request: WebhookRequest) -> WebhookAnswer:
        segments = [s for s in request.path[len(WEBHOOK_ROOT) :].split("/") if s]
        method = request.method
        if len(segments) in (2, 3) and segments[0] == "orchestrators":
            if method != "POST":
                return _empty(404)
            return self._start(request, segments[1], segments[2] if len(segments) == 3 else None)
        if not segments or segments[0] != "instances":
            return _empty(404)
        if len(segments) == 1:
            if method == "GET":
                return self._list(request)
            return self._purge_where(request) if method == "DELETE" else _empty(404)
        instance_id = segments[1]
        if len(segments) == 2:
            if method == "GET":
                return self._status(request, instance_id)
            return self._purge(instance_id) if method == "DELETE" else _empty(404)
        if method != "POST":
            return _empty(404)
        operation = segments[2].lower()
        if len(segments) == 4 and operation == "raiseevent":
            return self._raise_event(request, instance_id, segments[3])
        if len(segments) == 3 and operation == "terminate":
            return self._terminate(request, instance_id)
        if len(segments) == 3 and operation in _NOT_SUPPORTED:
            return _error(501, f"devhost does not support {operation} yet")
        return _empty(404)

    def _start(self, request: WebhookRequest, name: str, instance_id: str | None) -> WebhookAnswer:
        raw = request.body.decode("utf-8") if request.body.strip() else None
        if raw is not None:
            try:
                json.loads(raw)
            except json.JSONDecodeError:
                return _error(400, "Invalid JSON content")
        try:
            record = self._runtime.start_instance(name, instance_id, raw)
        except OrchestratorNotFound:
            return _error(
                400,
                "One or more of the arguments submitted is incorrect",
                f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator function. "
                "Additional info: no orchestrator function by that name is indexed.",
            )
        except InstanceExists as taken:
            return _error(409, str(taken))
        links = self._management_urls(request.origin, record.instance_id, self._runtime.config.hub_name, None)
        payload = {
            key: links[key]
            for key in (
                "id",
                "statusQueryGetUri",
                "sendEventPostUri",
                "terminatePostUri",
                "purgeHistoryDeleteUri",
                "restartPostUri",
                "suspendPostUri",
                "resumePostUri",
            )
        }
        return _json(202, payload, {"Location": links["statusQueryGetUri"], "Retry-After": "10"})

    def _status(self, request: WebhookRequest, instance_id: str) -> WebhookAnswer:
        store = self._runtime.store
        record = store.get(instance_id)
        if record is None:
            return _empty(404)
        query = request.query
        show_history = bool(_flag(query, "showHistory")) and record.runtime_status is not RuntimeStatus.PENDING
        history = store.history(instance_id) if show_history else None
        payload = status_payload(
            record,
            history,
            show_input=_flag(query, "showInput") is not False,
            show_history_output=bool(_flag(query, "showHistoryOutput")),
        )
        status = record.runtime_status
        if not status.terminal:
            return _json(202, payload, {"Location": request.url, "Retry-After": "5"})
        if status is RuntimeStatus.FAILED and _flag(query, "returnInternalServerErrorOnFailure"):
            return _json(500, payload)
        return _json(200, payload)

    def _list(self, request: WebhookRequest) -> WebhookAnswer:
        query = request.query
        prefix = query.get("instanceIdPrefix", [None])[0]
        records = self._runtime.store.query(
            InstanceQuery(_time(query, "createdTimeFrom"), _time(query, "createdTimeTo"), _statuses(query), prefix)
        )
        show_input = _flag(query, "showInput") is not False
        token = request.header("x-ms-continuation-token") or ""
        start = int(token) if token.isdigit() else 0
        top = query.get("top", [""])[0]
        end = start + int(top) if top.isdigit() and int(top) > 0 else len(records)
        page = [status_payload(record, show_input=show_input) for record in records[start:end]]
        headers = {"x-ms-continuation-token": str(end)} if end < len(records) else {}
        return _json(200, page, headers)

    def _purge(self, instance_id: str) -> WebhookAnswer:
        record = self._runtime.store.get(instance_id)
        if record is None:
            return _empty(404)
        if not record.runtime_status.terminal:
            return _json(
                412,
                "Only orchestrations in a terminal state can be purged, but the orchestration with instance ID "
                f"{instance_id} has status {record.runtime_status}",
            )
        return _json(200, {"instancesDeleted": self._runtime.store.purge([instance_id])})

    def _purge_where(self, request: WebhookRequest) -> WebhookAnswer:
        created_from = _time(request.query, "createdTimeFrom")
        if created_from is None:
            return _json(400, "Please provide value for 'createdTimeFrom' parameter.")
        created_to = _time(request.query, "createdTimeTo") or datetime.now(UTC)
        records = self._runtime.store.query(InstanceQuery(created_from, created_to, _statuses(request.query)))
        # Only finished instances: purging a live one would pull its history from under the engine.
        deleted = self._runtime.store.purge(r.instance_id for r in records if r.runtime_status.terminal)
        return _json(200, {"instancesDeleted": deleted}) if deleted else _empty(404)

    def _terminate(self, request: WebhookRequest, instance_id: str) -> WebhookAnswer:
        record = self._runtime.store.get(instance_id)
        if record is None:
            return _empty(404)
        if record.runtime_status.terminal:
            return _empty(410)
        self._runtime.terminate(instance_id, request.query.get("reason", [None])[0])
        return _empty(202)

    def _raise_event(self, request: WebhookRequest, instance_id: str, event_name: str) -> WebhookAnswer:
        record = self._runtime.store.get(instance_id)
        if record is None:
            return _empty(404)
        if record.runtime_status.terminal:
            return _empty(410)
        media_type = (request.header("Content-Type") or "").split(";")[0].strip().lower()
        if media_type != "application/json":
            return _error(400, "Only application/json request content is supported")
        raw = request.body.decode("utf-8")
        try:
            json.loads(raw or "null")
        except json.JSONDecodeError:
            return _error(400, "Invalid JSON content")
        self._runtime.raise_event(instance_id, event_name, raw or None)
        return _empty(202)


async def close_client_session() -> None:
    """The library keeps one aiohttp session per process, bound to the event loop that made it; close it
    with that loop so a host started later in the same process opens its own."""
    from azure.durable_functions.models.utils import http_utils

    close: Callable[[], Any] | None = getattr(http_utils, "_close_session", None)
    if close is not None:
        await close()

"""The HTTP side of devhost: host.json routePrefix, route templates, methods, HttpRequest/HttpResponse, and with
--require-keys the host's key check (a missing or wrong key: 401 with an empty body, as the host answers)."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, parse_qsl, unquote, urlsplit

import azure.functions as func

from devhost.app.function_index import FunctionSpec
from devhost.app.invoker import FunctionFailed, Invoker
from devhost.http.host_keys import KEY_HEADER, KEY_PARAMETER, AccessLevel, HostKeys
from devhost.http.routes import RouteTemplate, join_route

logger = logging.getLogger("devhost")

MAX_REQUEST_BODY_BYTES = 100 * 1024 * 1024  # the Functions host's default limit
_ADMIN_FUNCTION = re.compile(r"admin/functions/([A-Za-z][A-Za-z0-9_-]{0,127})")
ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE")
_KEY_IN_QUERY = re.compile(rf"([?&]{KEY_PARAMETER}=)[^&#\s]*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class HttpRoute:
    spec: FunctionSpec
    template: RouteTemplate
    methods: frozenset[str]
    access: AccessLevel = AccessLevel.FUNCTION


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """A request for one of the host's own APIs (the Durable extension's webhooks)."""

    method: str
    path: str  # decoded, without leading or trailing slash
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # names in lower case
    body: bytes
    origin: str  # scheme://host:port as the client addressed it
    url: str  # the whole URL as the client addressed it

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True, slots=True)
class WebhookAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


class Webhooks(Protocol):
    """Host-owned routes (e.g. runtime/webhooks/durabletask), tried before the app's HTTP routes; with keys
    required they take the extension's system key (or the master key)."""

    def handles(self, path: str) -> bool: ...

    def handle(self, request: WebhookRequest) -> WebhookAnswer: ...


class WebhookSet:
    """The host's own routes of several extensions (Durable, blobs), each asked in turn."""

    def __init__(self, *hooks: Webhooks | None) -> None:
        self._hooks = [hook for hook in hooks if hook is not None]

    def handles(self, path: str) -> bool:
        return any(hook.handles(path) for hook in self._hooks)

    def handle(self, request: WebhookRequest) -> WebhookAnswer:
        for hook in self._hooks:
            if hook.handles(request.path):
                return hook.handle(request)
        return WebhookAnswer(404, {}, b"")


def http_routes(specs: Sequence[FunctionSpec], route_prefix: str) -> list[HttpRoute]:
    """Every HTTP function's route, most specific first, as ASP.NET routing would try them."""
    routes = []
    for spec in specs:
        if spec.trigger_type != "httpTrigger":
            continue
        route = spec.trigger.get("route") or spec.name
        methods = spec.trigger.get("methods") or ALL_METHODS
        routes.append(
            HttpRoute(
                spec,
                RouteTemplate.parse(join_route(route_prefix, route)),
                frozenset(m.upper() for m in methods),
                AccessLevel.of_trigger(spec.trigger),
            )
        )
    return sorted(routes, key=lambda r: r.template.sort_key)


def find_route(routes: Sequence[HttpRoute], method: str, path: str) -> tuple[HttpRoute, dict[str, str]] | None:
    for route in routes:
        if method not in route.methods and not (method == "HEAD" and "GET" in route.methods):
            continue
        params = route.template.match(path)
        if params is not None:
            return route, params
    return None


def to_http_response(result: Any) -> func.HttpResponse:
    if isinstance(result, func.HttpResponse):
        return result
    if result is None:
        return func.HttpResponse(status_code=204)
    if isinstance(result, str | bytes):
        return func.HttpResponse(result)
    raise TypeError(f"an HTTP function returned {type(result).__name__}, not an HttpResponse")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm on, a kept-alive connection waits
    # for the client's delayed ACK (~40 ms) before the body.
    disable_nagle_algorithm = True
    server_version = "devhost"
    server: DevHostHttpServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        # The request line carries ?code=<key> when a client passes its key in the URL.
        logger.debug("%s - %s", self.address_string(), _KEY_IN_QUERY.sub(r"\1***", format % args))

    def _refused(self, level: AccessLevel, query: Mapping[str, list[str]]) -> bool:
        """With keys required: True (and a 401 sent) when the request lacks a key this level accepts."""
        keys = self.server.keys
        if keys is None:
            return False
        codes = query.get(KEY_PARAMETER)
        if keys.allows(level, self.headers.get(KEY_HEADER) or (codes[0] if codes else None)):
            return False
        self._answer(401, b"", {})
        return True

    def _answer(self, status: int, body: bytes, headers: dict[str, str], head_only: bool = False) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        if status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head_only and status not in (204, 304):
            self.wfile.write(body)

    def _handle(self) -> None:
        method = self.command.upper()
        split = urlsplit(self.path)
        path = unquote(split.path).strip("/")
        found = find_route(self.server.routes, method, path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BODY_BYTES:
            self.close_connection = True
            self._answer(413, b"", {})
            return
        body = self.rfile.read(length) if length else b""
        host = self.headers.get("Host", f"localhost:{self.server.server_address[1]}")
        webhooks = self.server.webhooks
        query = parse_qs(split.query, keep_blank_values=True)
        if webhooks is not None and webhooks.handles(path):
            if self._refused(AccessLevel.SYSTEM, query):
                return
            hook_request = WebhookRequest(
                method=method,
                path=path,
                query=query,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                origin=f"http://{host}",
                url=f"http://{host}{self.path}",
            )
            try:
                answer = webhooks.handle(hook_request)
            except Exception:
                logger.exception("%s %s failed", method, path)
                answer = WebhookAnswer(500, {}, b"")
            self._answer(answer.status, answer.body, answer.headers, head_only=method == "HEAD")
            return
        admin = _ADMIN_FUNCTION.fullmatch(path)
        if found is None and admin is not None and method == "POST":
            # As the Functions host does: run a non-HTTP function now (it needs the master key).
            if self._refused(AccessLevel.ADMIN, query):
                return
            fired = self.server.run_now is not None and self.server.run_now(admin.group(1))
            self._answer(202 if fired else 404, b"", {})
            return
        if found is None:
            self._answer(404, b"", {})
            return
        route, params = found
        if self._refused(route.access, query):
            return
        request = func.HttpRequest(
            method=method,
            url=f"http://{host}{self.path}",
            headers={k: v for k, v in self.headers.items()},
            params=dict(parse_qsl(split.query, keep_blank_values=True)),
            route_params=params,
            body=body,
        )
        try:
            response = to_http_response(self.server.invoker.call(route.spec, {route.spec.trigger["name"]: request}))
        except (FunctionFailed, TypeError):
            self._answer(500, b"", {})
            return
        headers = dict(response.headers)
        if "content-type" not in {k.lower() for k in headers}:
            # As the Python worker does: the charset goes with text types only.
            mimetype = response.mimetype
            headers["Content-Type"] = (
                f"{mimetype}; charset={response.charset}" if mimetype.startswith("text/") else mimetype
            )
        self._answer(response.status_code, response.get_body() or b"", headers, head_only=method == "HEAD")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class DevHostHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        routes: list[HttpRoute],
        invoker: Invoker,
        run_now: Callable[[str], bool] | None = None,
        webhooks: Webhooks | None = None,
        keys: HostKeys | None = None,
    ) -> None:
        self.routes = routes
        self.invoker = invoker
        self.run_now = run_now  # POST /admin/functions/{name}: True when that function was started
        self.webhooks = webhooks
        self.keys = keys  # None: every route is open, as under func start
        super().__init__(address, _Handler)

    def serve_in_background(self) -> threading.Thread:
        thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.2}, name="devhost-http", daemon=True
        )
        thread.start()
        return thread

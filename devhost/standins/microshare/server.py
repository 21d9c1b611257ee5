"""A local stand-in for Microshare's auth and API servers, with the real API's failure modes on demand.

There is no Microshare sandbox, so the client and its tests talk to this: the OAuth2 password grant, the
device-cluster read and the dashboard-view query, following /work/shared/microshare-api.md, including the
traps a client must survive (403 without the trailing slash, 503 when a fieldN is missing, a dataContext
that silently matches nothing, totalPages larger than the data, the same record on two pages). Faults
(5xx, 429 with Retry-After, 401, malformed JSON, a slow answer) are injected per test with `inject`, or over
HTTP under /_standin/ when the stand-in runs as its own process:

    python -m devhost.standins.microshare.server [--port N] [--locations 3] [--days 2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

from devhost.standins.microshare.dataset import DEFAULT_LOCATIONS, MicroshareDataset
from shared.microshare.api import (
    DASHBOARD_VIEW_PATH,
    FIELD_PARAMETERS,
    HOURLY_SNAPSHOT,
    MAX_PAGE_SIZE,
    PEOPLE_COUNTER,
    TIME_FORMAT_EXAMPLE,
    TOKEN_PATH,
)

ROUTES = ("token", "devices", "view")
FAULT_STATUSES = frozenset({401, 429, 500, 502, 503, 504})
MASK = "***"
# Never kept in the request log: the password, the API key (it is a credential too) and token values.
SECRET_PARAMETERS = frozenset({"password", "client_id", "access_token", "refresh_token", "token"})
ADMIN_PREFIX = "/_standin/"
_DEVICE_PATH = re.compile(r"^/device/(?P<rec_type>[^/]+)/(?P<cluster_id>[^/]+)/?$")
_API_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
# A body cut short, as a dropped connection or a broken proxy leaves it: valid JSON up to the cut.
MALFORMED_BODY = b'{"meta": {"totalPages": 1, "currentPage": 1, "totalCount": 1, "currentCount": 1}, "objs": [{"id": "'
_REASONS = {
    401: "Unauthorized",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass(frozen=True, slots=True)
class Fault:
    """What the next matching request(s) get instead of a normal answer.

    `route` is "token", "devices" or "view"; `rec_type` (the view's recType parameter, or the device path's
    recType), `page` (view only; an absent page parameter is page 1), `location` (the view's loc1) and
    `window_from` (the view's `from`, as sent) narrow it down, so one window can be made to fail. It fires `times`
    times: after sleeping `delay_seconds` (a slow answer) it answers `status` (429 with a Retry-After of
    `retry_after_seconds`), or a truncated JSON body with status 200 (`malformed_json`), or, with neither,
    the normal answer.
    """

    route: str
    status: int | None = None
    malformed_json: bool = False
    delay_seconds: float = 0.0
    retry_after_seconds: int = 1
    rec_type: str | None = None
    page: int | None = None
    times: int = 1
    location: str | None = None
    window_from: str | None = None

    def __post_init__(self) -> None:
        if self.route not in ROUTES:
            raise ValueError(f"route must be one of {', '.join(ROUTES)}, not {self.route!r}")
        if self.status is not None and self.status not in FAULT_STATUSES:
            raise ValueError(f"status must be one of {sorted(FAULT_STATUSES)}, not {self.status!r}")
        if self.status is not None and self.malformed_json:
            raise ValueError("a fault answers either a status or malformed JSON, not both")
        if self.status is None and not self.malformed_json and self.delay_seconds <= 0:
            raise ValueError("a fault needs a status, malformed_json or delay_seconds")
        if self.delay_seconds < 0 or self.retry_after_seconds < 0:
            raise ValueError("delay_seconds and retry_after_seconds cannot be negative")
        if self.times < 1 or (self.page is not None and self.page < 1):
            raise ValueError("times and page start at 1")

    @classmethod
    def from_json(cls, value: object) -> Fault:
        """A fault from its JSON object (the field names above); unknown names are refused, not ignored."""
        if not isinstance(value, dict):
            raise ValueError("a fault is a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = set(value) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        try:
            return cls(**value)
        except TypeError as error:
            raise ValueError(str(error)) from None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def matches(
        self, route: str, rec_type: str | None, page: int | None, query: Mapping[str, str] | None = None
    ) -> bool:
        sent = query or {}
        return (
            self.route == route
            and (self.rec_type is None or self.rec_type == rec_type)
            and (self.page is None or self.page == page)
            and (self.location is None or self.location == sent.get("loc1"))
            and (self.window_from is None or self.window_from == sent.get("from"))
        )


class LoggedRequest(NamedTuple):
    """One request as the stand-in saw it, secrets replaced by "***" (token requests include form fields)."""

    method: str
    path: str
    query: dict[str, str]


class Answer(NamedTuple):
    status: int
    body: bytes
    headers: dict[str, str]


def _json_answer(status: int, value: object, headers: Mapping[str, str] | None = None) -> Answer:
    return Answer(status, json.dumps(value).encode(), {"Content-Type": "application/json", **(headers or {})})


def _error(status: int, reason: str, headers: Mapping[str, str] | None = None) -> Answer:
    return _json_answer(status, {"error": _REASONS.get(status, "Error"), "reason": reason}, headers)


def _parse_api_time(name: str, value: str | None) -> datetime:
    if value is None or not _API_TIME.match(value):
        raise ValueError(f"{name} must be ISO 8601 UTC with milliseconds, e.g. {TIME_FORMAT_EXAMPLE}; got {value!r}")
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"{name} is not a real date and time: {value!r}") from None


def _positive_int(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {value!r}") from None
    if number < 1:
        raise ValueError(f"{name} starts at 1, not {number}")
    return number


def _is_json_array(value: str | None) -> bool:
    """The real API reads dataContext as JSON; anything else (an unquoted [people]) silently matches nothing."""
    if value is None:
        return False
    try:
        return isinstance(json.loads(value), list)
    except ValueError:
        return False


class MicroshareStandIn:
    """Microshare's auth and API on one loopback base URL; give the client that URL for both."""

    def __init__(
        self,
        dataset: MicroshareDataset | None = None,
        *,
        username: str = "demo@sensorpulse.local",
        password: str = "demo-password",
        api_key: str = "demo-api-key",
        token_lifetime_seconds: float = 172800,
        people_counter_view: str = "pc-view",
        snapshot_view: str = "snap-view",
        inflate_total_pages: int = 0,
        overlap_pages: bool = False,
        clock: Callable[[], float] = time.time,
        port: int = 0,
        token_prefix: str = "",
    ) -> None:
        """token_prefix starts every access and refresh token handed out, so a test can search logs for any
        piece of one."""
        self.dataset = dataset if dataset is not None else MicroshareDataset()
        self.username = username
        self.password = password
        self.api_key = api_key
        self.token_lifetime_seconds = token_lifetime_seconds
        self.views = {people_counter_view: PEOPLE_COUNTER, snapshot_view: HOURLY_SNAPSHOT}
        self.inflate_total_pages = inflate_total_pages
        self.overlap_pages = overlap_pages
        self._options = (inflate_total_pages, overlap_pages)
        self.clock = clock
        self._port = port
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}  # access token -> when it was granted, by `clock`
        self._grants = 0
        self._token_prefix = token_prefix
        self._issued: list[str] = []  # every access and refresh token handed out, revoked or not
        self._faults: list[tuple[Fault, int]] = []  # (fault, how many times it still fires)
        self._log: list[LoggedRequest] = []
        self._stopping = threading.Event()
        self._server: _StandInServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle

    def start(self) -> str:
        """Starts serving in a background thread; answers the base URL (http://127.0.0.1:<port>)."""
        if self._server is not None:
            raise RuntimeError("the stand-in is already running")
        self._stopping.clear()
        self._server = _StandInServer(("127.0.0.1", self._port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="microshare-standin", daemon=True
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        """Stops at once: a slow answer in progress is cut short, open connections are closed."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> MicroshareStandIn:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the stand-in is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def app_settings(self) -> dict[str, str]:
        """The MICROSHARE_* app settings that point the forwarder at this running stand-in."""
        views = {rec_type: view for view, rec_type in self.views.items()}
        return {
            "MICROSHARE_AUTH_URL": self.base_url,
            "MICROSHARE_API_URL": self.base_url,
            "MICROSHARE_USERNAME": self.username,
            "MICROSHARE_PASSWORD": self.password,
            "MICROSHARE_API_KEY": self.api_key,
            "MICROSHARE_CLUSTER_ID": self.dataset.cluster_id,
            "MICROSHARE_PEOPLE_COUNTER_VIEW_ID": views[PEOPLE_COUNTER],
            "MICROSHARE_SNAPSHOT_VIEW_ID": views[HOURLY_SNAPSHOT],
            "MICROSHARE_DATA_CONTEXT": '["people"]',
        }

    # --- control

    def inject(self, fault: Fault) -> None:
        """Queues a fault; faults fire in the order injected, each `fault.times` times."""
        with self._lock:
            self._faults.append((fault, fault.times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> list[Fault]:
        with self._lock:
            return [fault for fault, _ in self._faults]

    def reset(self) -> None:
        """Clears faults and the request log, and puts the paging options back as constructed."""
        with self._lock:
            self._faults.clear()
            self._log.clear()
            self.inflate_total_pages, self.overlap_pages = self._options

    def revoke_tokens(self) -> None:
        """Every token granted so far now gets 401, as when Microshare revokes them."""
        with self._lock:
            self._tokens.clear()

    @property
    def issued_tokens(self) -> list[str]:
        """Every access and refresh token handed out so far, oldest first."""
        with self._lock:
            return list(self._issued)

    @property
    def token_grants(self) -> int:
        with self._lock:
            return self._grants

    @property
    def requests(self) -> list[LoggedRequest]:
        """Every API request so far (not the /_standin/ ones), oldest first, secrets masked."""
        with self._lock:
            return list(self._log)

    # --- request handling (called from the server's threads)

    def _record(self, method: str, path: str, query: Mapping[str, str]) -> None:
        with self._lock:
            tokens = set(self._tokens)
        masked = {
            name: MASK if name in SECRET_PARAMETERS or value in tokens or value == self.password else value
            for name, value in query.items()
        }
        with self._lock:
            self._log.append(LoggedRequest(method, path, masked))

    def _take_fault(
        self, route: str, rec_type: str | None, page: int | None, query: Mapping[str, str] | None
    ) -> Fault | None:
        with self._lock:
            for index, (fault, left) in enumerate(self._faults):
                if fault.matches(route, rec_type, page, query):
                    if left <= 1:
                        del self._faults[index]
                    else:
                        self._faults[index] = (fault, left - 1)
                    return fault
        return None

    def _authorised(self, authorization: str | None) -> bool:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        with self._lock:
            granted = self._tokens.get(token.strip())
        return granted is not None and self.clock() < granted + self.token_lifetime_seconds

    def answer(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Answer | None:
        """The answer to one request (`headers` with lower-case names), or None when the stand-in stopped
        during a slow answer: the connection is then closed without one."""
        split = urlsplit(target)
        path = unquote(split.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        if path.startswith(ADMIN_PREFIX):
            return self._admin(method, path[len(ADMIN_PREFIX) :], body)
        if path == TOKEN_PATH and method == "POST":
            form = dict(query)
            if "application/x-www-form-urlencoded" in headers.get("content-type", "") or (body and b"=" in body):
                form.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            self._record(method, path, form)
            return self._with_faults("token", None, None, lambda: self._token(form))
        self._record(method, path, query)
        if path == TOKEN_PATH:
            return _error(405, "the token endpoint takes POST")
        device = _DEVICE_PATH.match(path)
        if device is not None:
            if method != "GET":
                return _error(405, "device clusters are read with GET")
            rec_type, cluster_id = device["rec_type"], device["cluster_id"]
            return self._with_faults(
                "devices",
                rec_type,
                None,
                lambda: self._authorise(headers) or self._devices(rec_type, cluster_id, query.get("details") == "true"),
            )
        if path == DASHBOARD_VIEW_PATH:
            if method != "GET":
                return _error(405, "views are read with GET")
            try:
                page: int | None = _positive_int("page", query.get("page", "1"))
            except ValueError:
                page = None
            return self._with_faults(
                "view", query.get("recType"), page, lambda: self._authorise(headers) or self._view(query), query
            )
        if path == DASHBOARD_VIEW_PATH.rstrip("/"):
            return _error(403, f"Forbidden: the view path ends with a slash ({DASHBOARD_VIEW_PATH})")
        return _error(404, f"no such path: {path}")

    def _with_faults(
        self,
        route: str,
        rec_type: str | None,
        page: int | None,
        answer: Callable[[], Answer],
        query: Mapping[str, str] | None = None,
    ) -> Answer | None:
        fault = self._take_fault(route, rec_type, page, query)
        if fault is None:
            return answer()
        if fault.delay_seconds > 0 and self._stopping.wait(fault.delay_seconds):
            return None
        if fault.status == 429:
            return _error(429, "rate limit exceeded", {"Retry-After": str(fault.retry_after_seconds)})
        if fault.status == 401:
            return self._unauthorised("the access token expired")
        if fault.status is not None:
            return _error(fault.status, f"injected {fault.status}")
        if fault.malformed_json:
            return Answer(200, MALFORMED_BODY, {"Content-Type": "application/json"})
        return answer()

    def _unauthorised(self, reason: str) -> Answer:
        return _error(401, reason, {"WWW-Authenticate": 'Bearer error="invalid_token"'})

    def _authorise(self, headers: Mapping[str, str]) -> Answer | None:
        """None when the request carries a valid Bearer token, else the 401 answer."""
        if self._authorised(headers.get("authorization")):
            return None
        return self._unauthorised("a valid Bearer token is required (missing, unknown, expired or revoked)")

    def _token(self, form: Mapping[str, str]) -> Answer:
        if form.get("grant_type") != "password":
            return _json_answer(400, {"error": "unsupported_grant_type", "reason": "grant_type must be password"})
        expected = {
            "username": self.username,
            "password": self.password,
            "client_id": self.api_key,
            "scope": "ALL:ALL",
        }
        wrong = [name for name, value in expected.items() if form.get(name) != value]
        if wrong:  # names the parameters, never their values
            return _json_answer(401, {"error": "invalid_grant", "reason": f"wrong or missing: {', '.join(wrong)}"})
        token = self._token_prefix + secrets.token_urlsafe(32)
        refresh = self._token_prefix + secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = self.clock()
            self._grants += 1
            self._issued += [token, refresh]
        return _json_answer(
            200,
            {
                "access_token": token,
                "expires_in": int(self.token_lifetime_seconds),
                "refresh_token": refresh,
                "token_type": "Bearer",
            },
        )

    def _devices(self, rec_type: str, cluster_id: str, details: bool) -> Answer:
        clusters = self.dataset.clusters()
        wanted = [c for c in clusters if c.id == cluster_id and c.rec_type == rec_type]
        if not wanted:
            return _error(404, f"no device cluster {cluster_id!r} of recType {rec_type!r}")
        # The requested cluster first, then the others the account can see (other owners among them).
        ordered = wanted + [c for c in clusters if c not in wanted]
        objs = [cluster.to_json(details) for cluster in ordered]
        return _json_answer(200, {"meta": _meta(1, 1, len(objs), len(objs)), "objs": objs})

    def _view(self, query: Mapping[str, str]) -> Answer:
        view_id, rec_type = query.get("id"), query.get("recType")
        if view_id not in self.views:
            return _error(404, f"no view {view_id!r}")
        if rec_type != self.views[view_id]:
            return _error(404, f"view {view_id!r} does not serve recType {rec_type!r}")
        missing = [name for name in FIELD_PARAMETERS if name not in query]
        if missing:  # the real API's answer to a missing fieldN: not a 400
            return _error(503, f"Service Unavailable (missing {', '.join(missing)})")
        try:
            start = _parse_api_time("from", query.get("from"))
            end = _parse_api_time("to", query.get("to"))
            page = _positive_int("page", query.get("page", "1"))
            size_text = query.get("pageSize", query.get("perPage", str(MAX_PAGE_SIZE)))
            page_size = _positive_int("pageSize", size_text)
        except ValueError as error:
            return _error(400, str(error))
        if page_size > MAX_PAGE_SIZE:
            return _error(400, f"pageSize is at most {MAX_PAGE_SIZE}, not {page_size}")
        loc1 = query.get("loc1")
        if not loc1:
            return _error(400, "loc1 is required")
        matches = _is_json_array(query.get("dataContext"))
        if rec_type == HOURLY_SNAPSHOT:
            lines = self.dataset.snapshot_lines(loc1, start, end) if matches else []
            objs = [{"data": {"location": loc1, "line": lines}}] if matches and page == 1 else []
            count = 1 if matches else 0
            return _json_answer(200, {"meta": _meta(1 if matches else 0, page, count, len(objs)), "objs": objs})
        offset = (page - 1) * page_size
        overlap = self.overlap_pages and page > 1
        if matches:
            total, records = self.dataset.query(
                PEOPLE_COUNTER,
                loc1,
                start,
                end,
                offset - 1 if overlap else offset,
                page_size + 1 if overlap else page_size,
            )
        else:
            total, records = 0, []
        if overlap and offset >= total:
            records = []  # past the end: nothing, not the last record again
        total_pages = -(-total // page_size) + self.inflate_total_pages
        meta = _meta(total_pages, page, total, len(records))
        return _json_answer(200, {"meta": meta, "objs": records})

    def _admin(self, method: str, action: str, body: bytes) -> Answer:
        """Control for when the stand-in runs as its own process; no token needed."""
        try:
            payload: Any = json.loads(body) if body else None
        except ValueError:
            return _error(400, "the body is not JSON")
        try:
            if (method, action) == ("POST", "faults"):
                faults = [Fault.from_json(item) for item in (payload if isinstance(payload, list) else [payload])]
                for fault in faults:
                    self.inject(fault)
                return _json_answer(201, {"faults": [fault.to_json() for fault in self.pending_faults]})
            if (method, action) == ("POST", "reset"):
                self.reset()
                return _json_answer(200, {"reset": True})
            if (method, action) == ("POST", "revoke-tokens"):
                self.revoke_tokens()
                return _json_answer(200, {"revoked": True})
            if (method, action) == ("POST", "options"):
                if not isinstance(payload, dict) or set(payload) - {"inflate_total_pages", "overlap_pages"}:
                    raise ValueError("options are inflate_total_pages and overlap_pages")
                self.inflate_total_pages = int(payload.get("inflate_total_pages", self.inflate_total_pages))
                self.overlap_pages = bool(payload.get("overlap_pages", self.overlap_pages))
                return _json_answer(
                    200, {"inflate_total_pages": self.inflate_total_pages, "overlap_pages": self.overlap_pages}
                )
            if (method, action) == ("POST", "records"):
                if not isinstance(payload, list):
                    raise ValueError("records are a JSON list")
                return _json_answer(201, {"added": self.dataset.add_records(payload)})
            if (method, action) == ("GET", "requests"):
                log = [entry._asdict() for entry in self.requests]
                return _json_answer(200, {"requests": log, "token_grants": self.token_grants})
        except ValueError as error:
            return _error(400, str(error))
        return _error(404, f"no stand-in control {method} {ADMIN_PREFIX}{action}")


def _meta(total_pages: int, current_page: int, total_count: int, current_count: int) -> dict[str, Any]:
    return {
        "totalPages": total_pages,
        "currentPage": current_page,
        "totalCount": total_count,
        "currentCount": current_count,
        "source": "db",
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in separate writes
    server_version = "microshare-standin"
    server: _StandInServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        super().finish()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        answer = self.server.standin.answer(self.command.upper(), self.path, headers, body)
        if answer is None:
            self.close_connection = True
            return
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command.upper() != "HEAD":
            self.wfile.write(answer.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


class _StandInServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], standin: MicroshareStandIn) -> None:
        self.standin = standin
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """Ends kept-alive connections, so their threads stop waiting for a next request."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (its timeout during a slow answer) or a stop mid-answer is not an error here.
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError) or self.standin.stopping:
            return
        super().handle_error(request, client_address)


def _location_names(count: int) -> list[str]:
    return [f"Building {chr(65 + n)}" if n < 26 else f"Building {n + 1}" for n in range(count)]


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devhost.standins.microshare.server", description="Serve a local Microshare stand-in."
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default 0: a free one)")
    parser.add_argument("--locations", type=int, default=len(DEFAULT_LOCATIONS), help="buildings (default 3)")
    parser.add_argument("--days", type=float, default=2, help="days of data up to now (default 2)")
    parser.add_argument("--devices-per-location", type=int, default=4, help="people counters per building")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the synthetic data")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    now = datetime.now(UTC)
    end = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    dataset = MicroshareDataset.synthetic(
        end - timedelta(days=args.days), end, _location_names(args.locations), args.devices_per_location, args.seed
    )
    standin = MicroshareStandIn(dataset, port=args.port)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        url = standin.start()
    except OSError as failure:
        print(f"microshare stand-in: cannot listen on 127.0.0.1:{args.port}: {failure.strerror}", file=sys.stderr)
        return 1
    print(f"Microshare stand-in: {url}", flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

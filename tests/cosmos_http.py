"""A Cosmos DB account on 127.0.0.1 that answers the SDK from tests/recordings: the account and container
reads every client makes first, and whatever a test's handler adds for documents (`answer_documents`)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

RECORDING: dict[str, Any] = json.loads(
    (Path(__file__).parent / "recordings" / "cosmos_change_feed.json").read_text(encoding="utf-8")
)
CONTAINER_PATH = "/dbs/sensorpulse/colls/readings"


class RecordedCosmos(ThreadingHTTPServer):
    def __init__(self, handler: type[RecordedCosmosHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.endpoint = f"http://127.0.0.1:{self.server_address[1]}/"


class RecordedCosmosHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def answer(self, status: int, body: Any, headers: dict[str, str] | None = None, charge: str = "1") -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-ms-request-charge", charge)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/":
            endpoint = self.server.endpoint if isinstance(self.server, RecordedCosmos) else ""
            self.answer(200, json.loads(json.dumps(RECORDING["account"]).replace("{endpoint}", endpoint)))
        elif path.rstrip("/") == CONTAINER_PATH:
            self.answer(200, RECORDING["container"], {"etag": RECORDING["container"]["_etag"]})
        elif path == f"{CONTAINER_PATH}/pkranges/":
            etag = RECORDING["pkranges_etag"]
            if self.headers.get("If-None-Match") == etag:
                self.answer(304, None, {"etag": etag})
            else:
                self.answer(200, RECORDING["pkranges"], {"etag": etag})
        else:
            self.answer_documents(path)

    def answer_documents(self, path: str) -> None:
        self.answer(404, {"code": "NotFound", "message": path})


ServerT = TypeVar("ServerT", bound=RecordedCosmos)


@contextmanager
def serving(server: ServerT) -> Iterator[ServerT]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()

"""DevHost running tests/devhost/durable_app in this process, and the HTTP calls a user would make to it."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from devhost.durable.rpc import WEBHOOK_ROOT
from devhost.host import DevHost, HostOptions
from devhost.http.host_keys import KEY_HEADER

APP_DIR = Path(__file__).parent / "durable_app"
TERMINAL = ("Completed", "Failed", "Terminated", "Canceled")
DEADLINE_SECONDS = 120.0  # how long to wait for something to happen, never a claim about how fast


@contextlib.contextmanager
def app_module_restored() -> Iterator[None]:
    """devhost imports the app as the top-level module `function_app` from APP_DIR; put back whatever
    `function_app` (the real app) and sys.path were before."""
    saved = sys.modules.pop("function_app", None)
    path = list(sys.path)
    try:
        yield
    finally:
        sys.modules.pop("function_app", None)
        sys.path[:] = path
        if saved is not None:
            sys.modules["function_app"] = saved


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


class RunningHost:
    """A started DevHost on a free port and a data folder; `stop()` ends every thread it started.

    With require_keys, requests carry the master key in the x-functions-key header, as an operator's would;
    set `key` to None (or another key) to call as someone else."""

    def __init__(self, data_dir: Path, require_keys: bool = False) -> None:
        self._threads_before = set(threading.enumerate())
        # A fresh import, as a new process would do: the library indexes an app object only once.
        sys.modules.pop("function_app", None)
        options = HostOptions(app_dir=APP_DIR, data_dir=data_dir, port=0, environ={}, require_keys=require_keys)
        self.host = DevHost(options)
        self.host.start()
        self.base_url = self.host.local_origin
        self.key: str | None = None if self.host.keys is None else self.host.keys.master

    def request(
        self, method: str, url: str, body: Any = None, content_type: str = "application/json"
    ) -> tuple[int, dict[str, str], Any]:
        data = None if body is None else json.dumps(body).encode()
        target = url if url.startswith("http") else self.base_url + url
        headers = {"Content-Type": content_type}
        if self.key is not None:
            headers[KEY_HEADER] = self.key
        request = urllib.request.Request(target, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw, status, headers = response.read(), response.status, dict(response.headers)
        except urllib.error.HTTPError as error:
            raw, status, headers = error.read(), error.code, dict(error.headers)
        return status, headers, json.loads(raw) if raw else None

    def start(self, orchestrator: str, payload: Any = None) -> dict[str, str]:
        """Start through the app's async HTTP starter; returns its check-status payload."""
        status, _, links = self.request("POST", f"/api/orchestrators/{orchestrator}", payload)
        assert status == 202, (status, links)
        return dict(links)

    def status_url(self, instance_id: str, query: str = "") -> str:
        return f"{self.base_url}/{WEBHOOK_ROOT}/instances/{instance_id}{query}"

    def wait(self, status_query_url: str) -> dict[str, Any]:
        """Poll the status endpoint, as a client of the async HTTP API does, until the instance finishes."""
        last: dict[str, Any] = {}

        def finished() -> bool:
            nonlocal last
            _, _, last = self.request("GET", status_query_url)
            return last is not None and last.get("runtimeStatus") in TERMINAL

        wait_until(finished, f"{status_query_url} to finish")
        return last

    def run(self, orchestrator: str, payload: Any = None) -> dict[str, Any]:
        return self.wait(self.start(orchestrator, payload)["statusQueryGetUri"])

    def stop(self) -> None:
        self.host.stop()
        self.assert_threads_stopped()

    def assert_threads_stopped(self) -> None:
        """Every thread the host started has ended (each gets a moment to finish unwinding)."""
        me = threading.current_thread()
        started = [t for t in threading.enumerate() if t not in self._threads_before and t is not me]
        for thread in started:
            thread.join(10)
        alive = [t.name for t in started if t.is_alive()]
        assert not alive, f"threads still running after stop: {alive}"

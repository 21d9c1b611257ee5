"""Starts `python -m devhost` as its own process, as a user would, and talks to it over HTTP."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
_DASHBOARD_LINE = re.compile(r"Dashboard: (http://localhost:\d+)/")


class DevhostProcess:
    def __init__(self, data_dir: Path, settings: Mapping[str, str], extra_args: Sequence[str] = ()) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("STORAGE_BACKEND", "EMBEDDED_DATA_DIR")}
        env.update(settings)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devhost", "--port", "0", "--data-dir", str(data_dir), *extra_args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        self._found = threading.Event()
        self.base_url = ""
        self._reader = threading.Thread(target=self._read_output, daemon=True)
        self._reader.start()
        if not self._found.wait(60):
            self.kill()
            raise AssertionError("devhost did not start:\n" + "".join(self.output))

    def _read_output(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            match = _DASHBOARD_LINE.search(line)
            if match:
                self.base_url = match.group(1).replace("localhost", "127.0.0.1")
                self._found.set()

    def get(self, path: str, headers: Mapping[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.base_url + path, headers=dict(headers or {}))
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def post_json(self, path: str, body: object) -> tuple[int, Any]:
        """POST `body` as JSON; (status, the answer parsed as JSON, or None for an empty one)."""
        return self.send_json("POST", path, body)

    def send_json(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        """`method` (PUT, DELETE...) with `body` as JSON, or without a body for None; (status, the answer parsed as
        JSON, or None for an empty one)."""
        status, answer = self.send(method, path, None if body is None else json.dumps(body).encode())
        return status, json.loads(answer) if answer else None

    def send(
        self, method: str, path: str, body: bytes | None = None, content_type: str = "application/json"
    ) -> tuple[int, bytes]:
        """`method` with `body` as it is (of `content_type`), or without a body for None; (status, the answer)."""
        headers = {"Content-Type": content_type} if body is not None else {}
        request = urllib.request.Request(self.base_url + path, data=body, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def get_json(self, path: str) -> Any:
        status, _, body = self.get(path)
        assert status == 200, (path, status, body[:200])
        return json.loads(body)

    def stop(self) -> int:
        """SIGTERM, as Ctrl-C would; returns the exit code once `output` holds everything devhost wrote."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("devhost did not stop within 30 s of SIGTERM") from None
        if not self._output_read():
            raise AssertionError("devhost exited but its output did not end within 30 s")
        return code

    def kill(self) -> None:
        """SIGKILL; afterwards `output` holds everything devhost wrote (what a check after a stop relies on)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        self._output_read()

    def _output_read(self) -> bool:
        """Whether the reader has reached the end of devhost's output: the process has exited, so it is close."""
        self._reader.join(30)
        return not self._reader.is_alive()

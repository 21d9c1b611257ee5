"""Debian's Chromium driven by Playwright for the dashboard's browser tests, and what a page did while it ran.

No browser is ever downloaded (`playwright install` is never run): `make chromium` installs Debian's package and
the tests launch it by path. Without it the tests skip, or fail where SENSORPULSE_REQUIRE_EMULATORS is set
(`make test`, so CI), as a missing emulator does.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import ConsoleMessage, Page, Request, Response

from tests.e2e.devhost_process import REPO, DevhostProcess
from tests.emulators import emulators_required

ARTIFACTS = REPO / "test-artifacts"  # git ignores it; CI may keep it
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"  # installed by npm ci (package.json)
# The page polls every 2 s, gives up on an answer after 5 s, and the simulator runs every second: anything taking
# longer than this is a failure. It bounds every wait, so none fails because the machine is busy.
WAIT_MS = 20_000


def chromium_executable() -> str:
    path = shutil.which("chromium")
    if path is None:
        message = "chromium is not installed; `make chromium` installs Debian's package (no browser is downloaded)"
        if emulators_required():
            pytest.fail(message)
        pytest.skip(message)
    return path


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def port_of(host: DevhostProcess) -> int:
    port = urlsplit(host.base_url).port
    assert port is not None, host.base_url
    return port


def restart_on_same_port(
    stopped: DevhostProcess, data_dir: Path, settings: Mapping[str, str], extra_args: Sequence[str] = ()
) -> DevhostProcess:
    """A new devhost where a stopped one was: same port (so an open page reaches it again) and same data folder.

    DevhostProcess passes `--port 0` first; argparse keeps the last `--port`, so the one added here wins. The
    listener sets SO_REUSEADDR, so the browser's closed connections in TIME_WAIT do not block the port.
    """
    assert stopped.process.poll() is not None, "stop the first devhost before starting another on its port"
    port = port_of(stopped)
    host = DevhostProcess(data_dir, settings, [*extra_args, "--port", str(port)])
    assert port_of(host) == port, (host.base_url, stopped.base_url)
    return host


@dataclass
class PageLog:
    """Everything one page asked for and complained about, recorded from before its first request."""

    page: Page
    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    navigations: int = 0

    @classmethod
    def watch(cls, page: Page) -> PageLog:
        log = cls(page)
        page.context.on("request", log._request)
        page.on("requestfailed", log._request_failed)
        page.on("response", log._response)
        page.on("console", log._console)
        page.on("pageerror", lambda error: log.console_errors.append(f"uncaught: {error}"))
        page.on("framenavigated", lambda frame: log._navigated(frame == page.main_frame))
        return log

    def _request(self, request: Request) -> None:
        self.requests.append(request.url)

    def _request_failed(self, request: Request) -> None:
        self.failed.append(f"{request.method} {request.url}: {request.failure}")

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.failed.append(f"{response.request.method} {response.url}: HTTP {response.status}")

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(f"{message.text} ({message.location.get('url', '')})")

    def _navigated(self, main_frame: bool) -> None:
        if main_frame:
            self.navigations += 1


def serious_accessibility_findings(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical findings on the page as it is now (each with up to 3 of its elements)."""
    assert AXE.is_file(), "axe-core is installed by npm ci (package.json)"
    page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(
        """async () => {
             const result = await axe.run(document);
             return result.violations
               .filter((v) => v.impact === "serious" || v.impact === "critical")
               .map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                              nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
           }"""
    )
    return found

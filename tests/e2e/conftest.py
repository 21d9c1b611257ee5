"""The browser tests' Chromium (one per module) and a fresh tab per test that records what the page did."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from tests.e2e.browser import WAIT_MS, PageLog, chromium_executable


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    executable = chromium_executable()
    with sync_playwright() as playwright:
        # --no-sandbox: the tests may run as root, where Chromium's sandbox refuses to start.
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def patient_expect() -> Iterator[None]:
    """Playwright's expect() waits 5 s by default, apart from the page's default timeout: WAIT_MS for both."""
    expect.set_options(timeout=WAIT_MS)
    try:
        yield
    finally:
        expect.set_options(timeout=None)


@pytest.fixture
def tab(chromium: Browser, patient_expect: None, request: pytest.FixtureRequest) -> Iterator[PageLog]:
    """A new browser context (1280x720, or a test module's CONTEXT_OPTIONS); a test module's PAGE_PROBES script,
    if it has one, runs before the page's own."""
    options = {"viewport": {"width": 1280, "height": 720}, **getattr(request.module, "CONTEXT_OPTIONS", {})}
    context = chromium.new_context(**options)
    context.set_default_timeout(WAIT_MS)
    try:
        page = context.new_page()
        page.add_init_script(getattr(request.module, "PAGE_PROBES", ""))
        yield PageLog.watch(page)
    finally:
        context.close()

"""Waiting for something to happen: poll a condition until it holds, or fail at a deadline.

A deadline says when to give up, never how fast anything is: make it generous (a slow or busy machine only
takes longer to get there, and a condition that holds ends the wait at once). A fixed sleep is no wait."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(condition: Callable[[], T | None], timeout: float, what: str) -> T:
    """The condition's first truthy answer; AssertionError naming `what` when none came within `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")

"""GET /api/ready: every backend the app writes to answers, checked at once and each within a deadline.

A backend that does not answer in time counts as down; its check goes on in a daemon thread and is not
waited for, so a hung connection can never hang the probe. Failures are reported by exception type (and
HTTP status when there is one), never by message: an SDK's message may carry an endpoint or a token.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from shared.ops.log_context import app_logger

logger = app_logger(__name__)

DEFAULT_DEADLINE_SECONDS = 5.0

Check = Callable[[], None]


class NotConfigured(Exception):
    """A check raises this when its backend is not set up for this app: reported, not counted as down."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    status: str  # "ok" | "failed" | "not configured"
    milliseconds: float
    error: str | None = None

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"status": self.status, "ms": round(self.milliseconds, 1)}
        if self.error is not None:
            body["error"] = self.error
        return body


def describe_failure(error: BaseException) -> str:
    """`TypeName` of the error and of its cause, with an HTTP status when one is known."""
    parts: list[str] = []
    seen: BaseException | None = error
    while seen is not None and len(parts) < 3:
        status = getattr(seen, "status_code", None)
        parts.append(f"{type(seen).__name__} {status}" if isinstance(status, int) else type(seen).__name__)
        seen = seen.__cause__
    return " caused by ".join(parts)


def run_checks(checks: Mapping[str, Check], deadline_seconds: float = DEFAULT_DEADLINE_SECONDS) -> list[CheckResult]:
    """Run every check in parallel; the answer comes within the deadline whatever the backends do."""
    results: dict[str, CheckResult] = {}
    lock = threading.Lock()
    started = time.perf_counter()

    def run(name: str, check: Check) -> None:
        began = time.perf_counter()
        try:
            check()
            result = CheckResult(name, "ok", (time.perf_counter() - began) * 1000)
        except NotConfigured as missing:
            result = CheckResult(name, "not configured", 0.0, str(missing))
        except Exception as failure:
            result = CheckResult(name, "failed", (time.perf_counter() - began) * 1000, describe_failure(failure))
        with lock:
            results[name] = result

    threads = [
        threading.Thread(target=run, args=(name, check), name=f"ready-{name}", daemon=True)
        for name, check in checks.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline_seconds - (time.perf_counter() - started)))
    with lock:
        answered = dict(results)
    timed_out = f"no answer within {deadline_seconds:g} s"
    return [answered.get(name, CheckResult(name, "failed", deadline_seconds * 1000, timed_out)) for name in checks]


def failed_checks(results: list[CheckResult]) -> list[str]:
    return [result.name for result in results if result.status == "failed"]


def readiness_body(results: list[CheckResult]) -> tuple[int, dict[str, object]]:
    """200 when no check failed, else 503 naming the ones that did."""
    failed = failed_checks(results)
    body: dict[str, object] = {
        "status": "not ready" if failed else "ready",
        "checks": {result.name: result.to_json() for result in results},
    }
    if failed:
        body["failed"] = failed
    return (503 if failed else 200), body


def check_readiness(checks: Mapping[str, Check]) -> tuple[int, dict[str, object]]:
    """GET /api/ready's answer: every check run at once; a warning names the ones that failed."""
    results = run_checks(checks)
    failed = failed_checks(results)
    if failed:
        logger.warning("not ready: %s", ", ".join(failed), extra={"event": "not_ready", "failed": ",".join(failed)})
    return readiness_body(results)

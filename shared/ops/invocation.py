"""What every function does around its work: log fields for the invocation, its count and duration in the
metrics, a span when Application Insights is on, and one structured line when it fails.

    @bp.function_name("summarise_readings")
    def summarise_readings(documents: func.DocumentList, context: func.Context) -> None:
        with observed("summarise_readings", context, trigger="cosmos"):
            ...
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Protocol

from shared.ops.app_insights import monitoring_enabled
from shared.ops.log_context import APP_LOGGER, app_logger, current_fields, log_fields
from shared.ops.metrics import get_metrics

logger = app_logger(__name__)

FAILED = "failed"
SUCCEEDED = "succeeded"
MAX_ERROR_CHARS = 300


class HasInvocationId(Protocol):
    """What we use of azure.functions.Context."""

    @property
    def invocation_id(self) -> str: ...


@contextmanager
def observed(function: str, context: HasInvocationId | None = None, **fields: object) -> Iterator[None]:
    """Run the block as invocation `function`; re-raises whatever the block raises."""
    invocation_id = context.invocation_id if context is not None else current_fields().get("invocation_id")
    metrics = get_metrics()
    with ExitStack() as stack:
        stack.enter_context(log_fields(invocation_id=invocation_id, function=function, **fields))
        if monitoring_enabled():
            from opentelemetry import trace

            attributes = {name: str(value) for name, value in current_fields().items()}
            tracer = trace.get_tracer(APP_LOGGER)
            stack.enter_context(tracer.start_as_current_span(function, attributes=attributes))
        started, outcome = time.perf_counter(), FAILED
        try:
            yield
            outcome = SUCCEEDED
        except Exception as failure:
            error = type(failure).__name__
            logger.error(
                "%s failed: %s: %s",
                function,
                error,
                str(failure)[:MAX_ERROR_CHARS],
                extra={"event": "invocation_failed", "error": error},
            )
            raise
        finally:
            metrics.invocations.labels(function, outcome).inc()
            metrics.invocation_seconds.labels(function).observe(time.perf_counter() - started)

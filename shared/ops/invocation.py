"""What every function does around its work: log fields for the invocation, its count and duration in the
metrics, a span when Application Insights is on, and one structured line when it fails.

    @bp.route(route="api/sensors", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
    @observed_function("list_sensors", trigger="http")
    def list_sensors(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
        ...

The function declares `context` so the host passes it; the wrapper keeps the user function's signature, so the
host binds the same arguments as it would without it.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, Protocol, TypeVar, cast

from shared.ops.app_insights import monitoring_enabled
from shared.ops.log_context import APP_LOGGER, app_logger, current_fields, log_fields
from shared.ops.metrics import PROCESS_METRICS

logger = app_logger(__name__)

FAILED = "failed"
SUCCEEDED = "succeeded"
MAX_ERROR_CHARS = 300

F = TypeVar("F", bound=Callable[..., Any])


class HasInvocationId(Protocol):
    """What we use of azure.functions.Context."""

    @property
    def invocation_id(self) -> str: ...


@contextmanager
def observed(function: str, context: HasInvocationId | None = None, **fields: object) -> Iterator[None]:
    """Run the block as invocation `function`; re-raises whatever the block raises."""
    invocation_id = context.invocation_id if context is not None else current_fields().get("invocation_id")
    metrics = PROCESS_METRICS
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


def observed_function(function: str, **fields: object) -> Callable[[F], F]:
    """Decorator: every call of the function is invocation `function` (see `observed`), with the host's
    `context` when the function declares one. Not for orchestrators: each replay would count again."""

    def wrap(user: F) -> F:
        if inspect.iscoroutinefunction(user):

            @functools.wraps(user)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with observed(function, kwargs.get("context"), **fields):
                    return await user(*args, **kwargs)

            return cast(F, run_async)

        @functools.wraps(user)
        def run(*args: Any, **kwargs: Any) -> Any:
            with observed(function, kwargs.get("context"), **fields):
                return user(*args, **kwargs)

        return cast(F, run)

    return wrap

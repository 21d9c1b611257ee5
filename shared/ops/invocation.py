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
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Protocol, TypeVar, cast

from shared.ops.app_insights import monitoring_enabled
from shared.ops.log_context import APP_LOGGER, app_logger, current_fields, pop_fields, push_fields
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


class Invocation:
    """The scope of one invocation: its log fields, a span when Application Insights is on, its count and
    duration, and one structured line when it fails. A plain context manager: it wraps every function call."""

    __slots__ = ("_function", "_fields", "_token", "_span", "_started")

    def __init__(self, function: str, context: HasInvocationId | None, fields: Mapping[str, object]) -> None:
        invocation_id = context.invocation_id if context is not None else current_fields().get("invocation_id")
        self._function = function
        self._fields = {"invocation_id": invocation_id, "function": function, **fields}
        self._span: AbstractContextManager[object] | None = None
        self._started = 0.0

    def __enter__(self) -> None:
        self._token = push_fields(self._fields)
        if monitoring_enabled():
            from opentelemetry import trace

            attributes = {name: str(value) for name, value in current_fields().items()}
            self._span = trace.get_tracer(APP_LOGGER).start_as_current_span(self._function, attributes=attributes)
            self._span.__enter__()
        self._started = time.perf_counter()

    def __exit__(
        self, kind: type[BaseException] | None, failure: BaseException | None, trace: TracebackType | None
    ) -> None:
        try:
            if isinstance(failure, Exception):
                error = type(failure).__name__
                logger.error(
                    "%s failed: %s: %s",
                    self._function,
                    error,
                    str(failure)[:MAX_ERROR_CHARS],
                    extra={"event": "invocation_failed", "error": error},
                )
        finally:
            outcome = SUCCEEDED if kind is None else FAILED
            PROCESS_METRICS.invocations.labels(self._function, outcome).inc()
            PROCESS_METRICS.invocation_seconds.labels(self._function).observe(time.perf_counter() - self._started)
            if self._span is not None:
                self._span.__exit__(kind, failure, trace)
            pop_fields(self._token)


def observed(function: str, context: HasInvocationId | None = None, **fields: object) -> Invocation:
    """Run the block as invocation `function`; re-raises whatever the block raises."""
    return Invocation(function, context, fields)


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

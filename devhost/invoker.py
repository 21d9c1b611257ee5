"""Calls user functions as the Python worker does: sync on a worker thread, async on an event loop,
with a `context` argument when the function asks for one, and the function's retry policy."""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import azure.functions as func
from azure.functions import _abc as functions_abc

from devhost.function_index import FunctionSpec

logger = logging.getLogger("devhost")


class _TraceContext(functions_abc.TraceContext):
    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return ""

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RetryContext(functions_abc.RetryContext):
    def __init__(self, retry_count: int, max_retry_count: int) -> None:
        self._count = retry_count
        self._max = max_retry_count

    @property
    def retry_count(self) -> int:
        return self._count

    @property
    def max_retry_count(self) -> int:
        return self._max

    @property
    def exception(self) -> Any:
        return None


class InvocationContext(func.Context):
    def __init__(self, spec: FunctionSpec, retry_count: int, max_retry_count: int) -> None:
        self._invocation_id = str(uuid.uuid4())
        self._function_name = spec.name
        self._retry = _RetryContext(retry_count, max_retry_count)
        self._local = threading.local()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return ""

    @property
    def trace_context(self) -> functions_abc.TraceContext:
        return _TraceContext()

    @property
    def retry_context(self) -> functions_abc.RetryContext:
        return self._retry


class FunctionFailed(RuntimeError):
    """The function raised; the cause is chained."""


class Invoker:
    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop

    def call(self, spec: FunctionSpec, arguments: Mapping[str, Any], retry_count: int = 0) -> Any:
        """One invocation; raises FunctionFailed when the function raises."""
        max_retries = spec.retry.max_retry_count if spec.retry else 0
        kwargs = dict(arguments)
        parameters = inspect.signature(spec.function).parameters
        if "context" in parameters:
            kwargs["context"] = InvocationContext(spec, retry_count, max_retries)
        started = time.perf_counter()
        try:
            if inspect.iscoroutinefunction(spec.function):
                result = asyncio.run(spec.function(**kwargs))
            else:
                result = spec.function(**kwargs)
        except Exception as failure:
            elapsed = (time.perf_counter() - started) * 1000
            logger.error(
                "Executed 'Functions.%s' (Failed, Duration=%.0fms): %s: %s",
                spec.name,
                elapsed,
                type(failure).__name__,
                failure,
                exc_info=logger.isEnabledFor(logging.DEBUG),
            )
            raise FunctionFailed(spec.name) from failure
        if spec.trigger_type != "httpTrigger":
            logger.debug(
                "Executed 'Functions.%s' (Succeeded, Duration=%.0fms)",
                spec.name,
                (time.perf_counter() - started) * 1000,
            )
        return result

    def call_with_retry(self, spec: FunctionSpec, make_arguments: Callable[[], Mapping[str, Any]]) -> bool:
        """Invoke, retrying per the function's policy. False when it still failed after the last retry
        (the host then moves on), or when devhost is stopping."""
        retries = 0
        while True:
            try:
                self.call(spec, make_arguments(), retries)
                return True
            except FunctionFailed:
                if spec.retry is None or not spec.retry.allows(retries) or self._stop.is_set():
                    return False
                retries += 1
                delay = spec.retry.delay_before(retries).total_seconds()
                logger.warning("retrying 'Functions.%s' in %.1fs (retry %d)", spec.name, delay, retries)
                if self._stop.wait(delay):
                    return False

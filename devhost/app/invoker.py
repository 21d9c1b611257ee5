"""Calls user functions as the Python worker does: sync on the caller's thread, async on the one event loop
the worker keeps for the life of the process (clients such as the Durable client keep sessions bound to
it), with a `context` argument when the function asks for one and no binding is named so, input bindings
devhost fills itself (durableClient), and the function's retry policy."""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from devhost.app.function_index import FunctionSpec
from shared.ops.log_context import log_fields

logger = logging.getLogger("devhost")


class _TraceContext:
    """The worker's trace context: devhost starts no distributed trace."""

    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return ""

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RetryContext:
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


class InvocationContext:
    """The `context` argument the worker passes, with the same members as azure.functions.Context (whose
    trace and retry types the library does not export)."""

    def __init__(self, spec: FunctionSpec, retry_count: int, max_retry_count: int, invocation_id: str) -> None:
        self._invocation_id = invocation_id
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
    def trace_context(self) -> _TraceContext:
        return _TraceContext()

    @property
    def retry_context(self) -> _RetryContext:
        return self._retry


class FunctionFailed(RuntimeError):
    """The function raised; the cause is chained."""


_LOOP_CLOSE_SECONDS = 10.0

InputProvider = Callable[[Mapping[str, Any]], Any]


class Invoker:
    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._inputs: dict[str, InputProvider] = {}
        self._closers: list[Callable[[], Awaitable[Any]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._loop_lock = threading.Lock()
        self._closed = False

    def provide_input(self, binding_type: str, provide: InputProvider) -> None:
        """Fill every input binding of this type with provide(binding), as the host's extension would."""
        self._inputs[binding_type] = provide

    def on_close(self, closer: Callable[[], Awaitable[Any]]) -> None:
        """A coroutine to run on the event loop before it closes (e.g. to close a client session)."""
        self._closers.append(closer)

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        with self._loop_lock:
            if self._closed:
                raise RuntimeError("the event loop is closed: devhost is stopping")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="devhost-asyncio", daemon=True)
                thread.start()
                self._loop, self._loop_thread = loop, thread
            return self._loop

    def close(self) -> None:
        """Cancel what still runs on the event loop, run the closers, stop the loop and its thread."""
        with self._loop_lock:
            loop, thread = self._loop, self._loop_thread
            self._loop = self._loop_thread = None
            self._closed = True
        if loop is None or thread is None:
            return

        async def shut_down() -> None:
            running = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            for closer in self._closers:
                try:
                    await closer()
                except Exception:
                    logger.exception("closing the event loop: a closer failed")
            await loop.shutdown_asyncgens()

        try:
            asyncio.run_coroutine_threadsafe(shut_down(), loop).result(_LOOP_CLOSE_SECONDS)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_LOOP_CLOSE_SECONDS)
            if not thread.is_alive():
                loop.close()

    def _arguments(
        self, spec: FunctionSpec, arguments: Mapping[str, Any], retry_count: int, invocation_id: str
    ) -> dict[str, Any]:
        kwargs = dict(arguments)
        names = {str(binding.get("name")) for binding in spec.bindings}
        for binding in spec.bindings:
            provide = self._inputs.get(str(binding.get("type")))
            if provide is not None and str(binding.get("direction", "")).lower() == "in":
                kwargs.setdefault(str(binding["name"]), provide(binding))
        if "context" in inspect.signature(spec.function).parameters and "context" not in names:
            max_retries = spec.retry.max_retry_count if spec.retry else 0
            kwargs["context"] = InvocationContext(spec, retry_count, max_retries, invocation_id)
        return kwargs

    def call(
        self, spec: FunctionSpec, arguments: Mapping[str, Any], retry_count: int = 0, log_failure: bool = True
    ) -> Any:
        """One invocation; raises FunctionFailed when the function raises (logged unless log_failure is False,
        for callers that report the failure themselves)."""
        invocation_id = str(uuid.uuid4())
        kwargs = self._arguments(spec, arguments, retry_count, invocation_id)
        # As the worker does: every record logged during the invocation names it (shared.ops.log_context).
        with log_fields(invocation_id=invocation_id, function=spec.name):
            return self._call(spec, kwargs, log_failure)

    def _call(self, spec: FunctionSpec, kwargs: dict[str, Any], log_failure: bool) -> Any:
        started = time.perf_counter()
        try:
            if inspect.iscoroutinefunction(spec.function):
                pending = asyncio.run_coroutine_threadsafe(spec.function(**kwargs), self._event_loop())
                try:
                    result = pending.result()
                except concurrent.futures.CancelledError:
                    raise RuntimeError("cancelled: devhost is stopping") from None
            else:
                result = spec.function(**kwargs)
        except Exception as failure:
            elapsed = (time.perf_counter() - started) * 1000
            logger.log(
                logging.ERROR if log_failure else logging.DEBUG,
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

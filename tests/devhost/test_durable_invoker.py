"""The invoker as the durable client needs it: async functions on one long-lived event loop (the client's
HTTP session is bound to it), input bindings devhost fills itself, and a loop that stops with the host."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any

from devhost.app.function_index import FunctionSpec
from devhost.app.invoker import Invoker


def _spec(function: Any, bindings: list[dict[str, Any]]) -> FunctionSpec:
    return FunctionSpec(name="fn", trigger=bindings[0], bindings=bindings, retry=None, function=function)


TIMER = {"type": "timerTrigger", "name": "timer", "direction": "in"}
CLIENT = {"type": "durableClient", "name": "client", "direction": "IN", "taskHub": "Hub"}


def test_async_functions_share_one_event_loop_until_the_invoker_closes() -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def remember_loop(timer: object) -> None:
        loops.append(asyncio.get_running_loop())

    invoker = Invoker(threading.Event())
    spec = _spec(remember_loop, [TIMER])
    callers = [threading.Thread(target=invoker.call, args=(spec, {"timer": None})) for _ in range(3)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    invoker.call(spec, {"timer": None})
    assert len(loops) == 4 and len(set(map(id, loops))) == 1

    closed: list[bool] = []

    async def close_session() -> None:
        closed.append(True)

    invoker.on_close(close_session)
    invoker.close()
    assert closed == [True]
    assert loops[0].is_closed()
    assert not [t for t in threading.enumerate() if t.name == "devhost-asyncio"]


def test_durable_client_binding_is_filled_and_a_binding_named_context_is_not_replaced() -> None:
    seen: dict[str, Any] = {}

    def provide(binding: Mapping[str, Any]) -> str:
        return f"client for {binding['taskHub']}"

    def function(context: str, client: str) -> None:
        seen.update(context=context, client=client)

    invoker = Invoker(threading.Event())
    invoker.provide_input("durableClient", provide)
    trigger = {"type": "orchestrationTrigger", "name": "context", "direction": "IN"}
    invoker.call(_spec(function, [trigger, CLIENT]), {"context": "the orchestration context"})
    assert seen == {"context": "the orchestration context", "client": "client for Hub"}
    invoker.close()  # no async function ran: nothing to stop

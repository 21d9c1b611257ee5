"""warmupTrigger: the host runs an app's `warmup` function once on each new instance, before that instance gets
traffic (on plans with the trigger, and only when scaling out). devhost runs it once at start, on its own thread,
while it already serves: a local host should answer at once, and the function only loads libraries early."""

from __future__ import annotations

import logging

from azure.functions.warmup import WarmUpContext

from devhost.app.function_index import FunctionSpec
from devhost.app.invoker import FunctionFailed, Invoker

WARMUP_TRIGGER = "warmupTrigger"

logger = logging.getLogger(__name__)


def run_warmup(spec: FunctionSpec, invoker: Invoker) -> None:
    """Invoke the warmup function once; a failure is logged (by the invoker) and changes nothing else, as in
    Azure, where the instance then starts without it."""
    try:
        invoker.call(spec, {str(spec.trigger["name"]): WarmUpContext()})
    except FunctionFailed:
        return
    logger.debug("Function %s: instance warmed up", spec.name)

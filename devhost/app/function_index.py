"""Reads the app's own binding metadata, as the Python worker reports it to the host when indexing."""

from __future__ import annotations

import importlib
import json
import re
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from azure.functions.decorators.function_app import Function, FunctionRegister

from devhost.app.settings import resolve

_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?$")


class AppIndexError(RuntimeError):
    """The app could not be indexed (import failed, no app object, a malformed binding)."""


def parse_timespan(text: str) -> timedelta:
    match = _TIMESPAN.match(text.strip())
    if not match:
        raise AppIndexError(f"{text!r} is not a TimeSpan (hh:mm:ss)")
    days, hours, minutes, seconds, fraction = match.groups()
    return timedelta(
        days=int(days or 0),
        hours=int(hours),
        minutes=int(minutes),
        seconds=int(seconds) + (float("0." + fraction) if fraction else 0.0),
    )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`fixed_delay` or `exponential_backoff`; max_retry_count -1 retries until success."""

    strategy: str
    max_retry_count: int
    delay: timedelta
    minimum: timedelta
    maximum: timedelta

    def allows(self, retries_done: int) -> bool:
        return self.max_retry_count < 0 or retries_done < self.max_retry_count

    def delay_before(self, retry_number: int) -> timedelta:
        """Delay before retry number `retry_number` (1-based)."""
        if self.strategy == "fixed_delay":
            return self.delay
        # The host doubles from the minimum and caps at the maximum.
        exponent = min(retry_number - 1, 30)
        longest: timedelta = min(self.maximum, self.minimum * (2**exponent))
        return longest

    @classmethod
    def from_setting(cls, setting: Mapping[str, Any]) -> RetryPolicy:
        strategy = str(setting.get("strategy", ""))
        if strategy not in ("fixed_delay", "exponential_backoff"):
            raise AppIndexError(f"retry strategy {strategy!r} is not fixed_delay or exponential_backoff")
        zero = "00:00:00"
        return cls(
            strategy=strategy,
            max_retry_count=int(setting.get("max_retry_count", 0)),
            delay=parse_timespan(setting.get("delay_interval") or zero),
            minimum=parse_timespan(setting.get("minimum_interval") or zero),
            maximum=parse_timespan(setting.get("maximum_interval") or zero),
        )


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    name: str
    trigger: dict[str, Any]
    bindings: list[dict[str, Any]]
    retry: RetryPolicy | None
    function: Callable[..., Any]

    @property
    def trigger_type(self) -> str:
        return str(self.trigger["type"])


def find_app(module: Any) -> FunctionRegister:
    apps = [value for value in vars(module).values() if isinstance(value, FunctionRegister)]
    if len(apps) != 1:
        raise AppIndexError(f"{module.__name__} must define exactly one FunctionApp (found {len(apps)})")
    return apps[0]


_indexed: dict[int, tuple[FunctionRegister, list[Function]]] = {}
_index_lock = threading.Lock()


def indexed_functions(app: FunctionRegister) -> list[Function]:
    """The app's functions, listed once per process as the worker lists them (the library refuses to list a
    function name a second time), and the same list for every later host or test in the process."""
    with _index_lock:
        found = _indexed.get(id(app))
        if found is None or found[0] is not app:
            found = _indexed[id(app)] = (app, app.get_functions())
        return found[1]


def load_functions(app_dir: Path, environ: Mapping[str, str], module_name: str = "function_app") -> list[FunctionSpec]:
    """Import the app from app_dir and describe every function, with %SETTING% expressions resolved."""
    if str(app_dir) not in sys.path:
        sys.path.insert(0, str(app_dir))
    module = importlib.import_module(module_name)
    specs: list[FunctionSpec] = []
    for function in indexed_functions(find_app(module)):
        name = function.get_function_name() or function.get_user_function().__name__
        bindings = [resolve(b, environ, name) for b in json.loads(function.get_function_json())["bindings"]]
        triggers = [b for b in bindings if str(b.get("type", "")).endswith("Trigger")]
        if len(triggers) != 1:
            raise AppIndexError(f"function {name} must have exactly one trigger")
        retry_setting = function.get_settings_dict("retry_policy")
        specs.append(
            FunctionSpec(
                name=name,
                trigger=triggers[0],
                bindings=bindings,
                retry=RetryPolicy.from_setting(retry_setting) if retry_setting else None,
                function=function.get_user_function(),
            )
        )
    return specs

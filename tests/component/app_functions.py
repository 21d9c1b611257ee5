"""The app's functions as the worker indexes them, listable more than once per test process."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable
from typing import Any

from azure.functions.decorators.function_app import Function

import function_app
from devhost.app.function_index import indexed_functions


class HostContext:
    """The `context` argument the worker passes to a function that declares one: a fresh invocation id."""

    def __init__(self, function_name: str) -> None:
        self._id = str(uuid.uuid4())
        self._name = function_name

    @property
    def invocation_id(self) -> str:
        return self._id

    @property
    def thread_local_storage(self) -> Any:
        return None

    @property
    def function_name(self) -> str:
        return self._name

    @property
    def function_directory(self) -> str:
        return ""


def as_the_host_calls(function: Function) -> Callable[..., Any]:
    """The user function, given a `context` on each call when it declares one, as the worker does."""
    user = function.get_user_function()
    if "context" not in inspect.signature(user).parameters:
        return user
    name = function.get_function_name() or user.__name__

    def call(*args: Any, **kwargs: Any) -> Any:
        return user(*args, context=HostContext(name), **kwargs)

    return call


def app_functions() -> dict[str, Function]:
    """Every function of the app by name, as devhost indexes them."""
    functions = indexed_functions(function_app.app)
    return {f.get_function_name() or f.get_user_function().__name__: f for f in functions}

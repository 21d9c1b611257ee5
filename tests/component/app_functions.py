"""The app's functions as the worker indexes them, listable more than once per test process."""

from __future__ import annotations

from azure.functions.decorators.function_app import Function

import function_app


def app_functions() -> dict[str, Function]:
    """Every function of the app by name.

    `get_functions()` remembers every name it returned and refuses to list them again (the worker calls it
    once per process); forget them before and after, so every test, and devhost's indexer, can list them."""
    app = function_app.app
    app.functions_bindings = None
    try:
        functions: list[Function] = app.get_functions()
    finally:
        app.functions_bindings = None
    return {f.get_function_name() or f.get_user_function().__name__: f for f in functions}

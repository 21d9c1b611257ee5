"""The app's functions over a temporary embedded store, called as the host calls them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import azure.functions as func
import pytest

from shared import app as services
from shared.settings import get_ingest_limits, get_settings
from shared.storage.factory import get_stores
from tests.component.app_functions import app_functions, as_the_host_calls

Handler = Callable[[func.HttpRequest], func.HttpResponse]


def _clear_caches() -> None:
    """Forget every process-wide instance, so the next call builds it from this test's settings."""
    for cached in (get_settings, get_ingest_limits, get_stores, *vars(services).values()):
        clear = getattr(cached, "cache_clear", None)
        if callable(clear):
            clear()


@pytest.fixture
def app_on_temp_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    _clear_caches()
    monkeypatch.setenv("STORAGE_BACKEND", "embedded")
    monkeypatch.setenv("EMBEDDED_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WINDOW_SIZE", "5")
    yield tmp_path
    _clear_caches()


@pytest.fixture
def handlers() -> dict[str, Handler]:
    return {name: cast(Handler, as_the_host_calls(f)) for name, f in app_functions().items()}

"""The app's functions over a temporary embedded store, called as the host calls them."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import azure.functions as func
import pytest

from shared.app import Services, install, services
from shared.dashboard.fleet import MAX_PAGE_SIZE, FleetQuery
from shared.storage.factory import open_embedded
from shared.storage.sqlite.database import SqliteDatabase
from tests.component.alert_rig import close_opened
from tests.component.app_functions import app_functions, as_the_host_calls

Handler = Callable[[func.HttpRequest], func.HttpResponse]


@pytest.fixture
def app_on_temp_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("STORAGE_BACKEND", "embedded")
    monkeypatch.setenv("EMBEDDED_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WINDOW_SIZE", "5")
    database = SqliteDatabase.in_directory(tmp_path)
    # The app's services, on this test's settings and store.
    install(Services.from_env(os.environ, stores=open_embedded(database)))
    yield tmp_path
    install(None)
    database.close()


@pytest.fixture
def historic_readings(monkeypatch: pytest.MonkeyPatch) -> None:
    """For tests about something else that summarise readings of fixed past dates directly: the app starts with no
    age limit (READING_MAX_AGE_SECONDS=0). Use it before app_on_temp_store, which builds the services."""
    monkeypatch.setenv("READING_MAX_AGE_SECONDS", "0")


@pytest.fixture(autouse=True)
def _close_rig_databases() -> Iterator[None]:
    """The databases a test opened through tests.component.alert_rig: closed, so a long run keeps its files few."""
    yield
    close_opened()


@pytest.fixture
def handlers() -> dict[str, Handler]:
    return {name: cast(Handler, as_the_host_calls(f)) for name, f in app_functions().items()}


def listed_series() -> list[dict[str, Any]]:
    """Every series as the fleet listing shows it (one page holds them all in these tests)."""
    listed: list[dict[str, Any]] = services().dashboard.fleet_page(
        FleetQuery(), MAX_PAGE_SIZE, None, datetime.now(UTC)
    )["items"]
    return listed

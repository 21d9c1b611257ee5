"""Fixtures shared by every test folder: a SQLite database in the test's temp folder, a still clock for the
metrics' lag, and the emulators, started once per session and stopped at the end."""

from __future__ import annotations

import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import shared.ops.metrics
from shared.storage.sqlite.database import SqliteDatabase
from tests.emulators import (
    Emulator,
    EmulatorUnavailable,
    emulators_required,
    start_azurite,
    start_cosmos_stand_in,
)


def _emulator(start: Any) -> Iterator[Emulator]:
    try:
        emulator: Emulator = start()
    except EmulatorUnavailable as error:
        if emulators_required():
            raise
        pytest.skip(f"emulator not available: {error}")
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def database(tmp_path: Path) -> Iterator[SqliteDatabase]:
    db = SqliteDatabase.in_directory(tmp_path)
    yield db
    db.close()


@pytest.fixture
def frozen_now_ms(monkeypatch: pytest.MonkeyPatch) -> int:
    """The moment the pipeline metrics take as now when they measure a reading's lag, held still (in epoch ms):
    a lag is then exactly what the test makes it, however long the test takes to get there."""
    now = float(int(time.time()))
    monkeypatch.setattr(shared.ops.metrics, "time", types.SimpleNamespace(time=lambda: now))
    return int(now * 1000)


@pytest.fixture(scope="session")
def azurite() -> Iterator[Emulator]:
    yield from _emulator(start_azurite)


@pytest.fixture(scope="session")
def cosmos_stand_in() -> Iterator[Emulator]:
    yield from _emulator(start_cosmos_stand_in)

"""Fixtures shared by every test folder: a SQLite database in the test's temp folder, and the emulators,
started once per session and stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.storage.sqlite.database import SqliteDatabase
from tests.emulators import (
    Emulator,
    EmulatorUnavailable,
    emulators_required,
    start_azurite_tables,
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


@pytest.fixture(scope="session")
def azurite() -> Iterator[Emulator]:
    yield from _emulator(start_azurite_tables)


@pytest.fixture(scope="session")
def cosmos_stand_in() -> Iterator[Emulator]:
    yield from _emulator(start_cosmos_stand_in)

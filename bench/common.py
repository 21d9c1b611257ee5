"""Helpers every bench shares: machine description, percentiles, logging to stderr, simulator-like readings."""

from __future__ import annotations

import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from shared.readings.reading import Reading

REPO_ROOT = Path(__file__).resolve().parent.parent
# The simulator's namespace is private; a bench namespace keeps bench ids apart from simulated ones.
_BENCH_ID_NAMESPACE = uuid.UUID("0d7e6c52-5a3b-4f0e-9a51-7b8c2f4e1d93")


def machine() -> dict[str, Any]:
    return {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (fraction in (0, 1]): a value that was actually measured."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def reading_document(
    sensor_id: str, sequence: int, value: float, moment: datetime, ttl_seconds: int = 0
) -> dict[str, Any]:
    """A reading as the simulator writes it to `readings`."""
    reading = Reading(
        id=str(uuid.uuid5(_BENCH_ID_NAMESPACE, f"{sensor_id}:{sequence}")),
        sensor_id=sensor_id,
        metric="temperature",
        value=round(value, 2),
        unit="°C",
        timestamp=moment,
        source="bench",
    )
    return reading.to_document(ttl_seconds or None)


def stop_devhost(process: subprocess.Popen[bytes], grace_seconds: float = 10.0) -> int | None:
    """SIGTERM, as Ctrl-C would; killed when it has not stopped within the grace. Returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace_seconds)
        except subprocess.TimeoutExpired:
            log(f"devhost did not stop within {grace_seconds:.0f} s of SIGTERM; killing it")
            process.kill()
            process.wait(grace_seconds)
    return process.returncode

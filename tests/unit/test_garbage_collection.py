"""Loading the app tunes the collector: what it loaded is frozen, young objects are collected less often."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from shared.ops.garbage_collection import YOUNG_THRESHOLD

_REPORT = "import gc, json, function_app; print(json.dumps([gc.get_threshold()[0], gc.get_freeze_count()]))"


def test_loading_the_app_freezes_what_it_loaded_and_collects_young_objects_less_often() -> None:
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", _REPORT], cwd=repo, capture_output=True, text=True, timeout=120, check=True
    )
    threshold, frozen = json.loads(done.stdout.strip().splitlines()[-1])
    assert threshold == YOUNG_THRESHOLD
    assert frozen > 50_000  # the SDKs and the app: never traversed again

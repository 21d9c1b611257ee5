"""Cold start: `import function_app` in a fresh interpreter (cwd = repo root), timed inside the child.

The child reports the import time, whether matplotlib got imported (it must not: charts import it lazily),
and its module count. Interpreter start-up is outside the timed span but reported as wall time per run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench.common import REPO_ROOT, log, machine, median

RUNS = 5
TARGET_SECONDS = 1.5
CHILD_TIMEOUT_SECONDS = 60

_CHILD = """
import json, sys, time
began = time.perf_counter()
import function_app
elapsed = time.perf_counter() - began
print(json.dumps({"seconds": elapsed, "matplotlib": "matplotlib" in sys.modules, "modules": len(sys.modules)}))
"""


def _child_env(data_dir: str) -> dict[str, str]:
    env = dict(os.environ)
    # Importing the app reads no settings, but if it ever does, it must not touch the repo's .devhost.
    env["STORAGE_BACKEND"] = "embedded"
    env["EMBEDDED_DATA_DIR"] = data_dir
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    return env


def run() -> dict[str, Any]:
    samples: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-coldstart-") as tmp:
        env = _child_env(tmp)
        for n in range(RUNS):
            began = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", _CHILD],
                cwd=REPO_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=CHILD_TIMEOUT_SECONDS,
                check=False,
            )
            wall = time.perf_counter() - began
            if done.returncode != 0:
                sys.stderr.write(done.stderr)
                raise RuntimeError(f"`import function_app` failed in the child (exit {done.returncode})")
            sample = json.loads(done.stdout.strip().splitlines()[-1])
            sample["wall_seconds"] = wall
            samples.append(sample)
            log(f"run {n + 1}: import {sample['seconds']:.3f} s, process {wall:.3f} s")
    seconds = [float(s["seconds"]) for s in samples]
    matplotlib_imported = any(bool(s["matplotlib"]) for s in samples)
    return {
        "bench": "coldstart",
        "runs": RUNS,
        "import_seconds": [round(s, 4) for s in seconds],
        "median_seconds": round(median(seconds), 4),
        "max_seconds": round(max(seconds), 4),
        "process_wall_median_seconds": round(median([float(s["wall_seconds"]) for s in samples]), 4),
        "modules_loaded": int(samples[-1]["modules"]),
        "matplotlib_imported": matplotlib_imported,
        "target": {"max_seconds_max": TARGET_SECONDS, "matplotlib_imported": False},
        "meets_target": max(seconds) <= TARGET_SECONDS and not matplotlib_imported,
        "machine": machine(),
    }

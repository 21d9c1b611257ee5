"""devhost in a terminal, as `make run` shows it: readable log lines (no JSON) and one status line at the
bottom, redrawn in place with live figures. The terminal is a real pseudo-terminal."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.devhost_process import REPO

pytestmark = pytest.mark.e2e

STATUS = re.compile(r"\r\x1b\[2K▶ ([\d,.]+) readings/s · lag p50 [^·]+· ([\d,]+) summaries · (\d+) failed")


def test_a_terminal_gets_readable_lines_and_a_live_status_line(tmp_path: Path) -> None:
    controller, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("STORAGE_BACKEND", "EMBEDDED_DATA_DIR")}
    env.update({"SENSOR_COUNT": "3", "SIMULATOR_SCHEDULE": "*/1 * * * * *", "TERM": "xterm"})
    process = subprocess.Popen(
        [sys.executable, "-m", "devhost", "--port", "0", "--data-dir", str(tmp_path)],
        cwd=REPO,
        env=env,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,
    )
    os.close(terminal)
    seen = b""
    deadline = time.monotonic() + 120  # when to give up: start-up and six summaries take about 10 s here
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.5)
            if ready:
                try:
                    seen += os.read(controller, 65536)
                except OSError:
                    break
            summaries = [int(m.group(2).replace(",", "")) for m in STATUS.finditer(seen.decode(errors="replace"))]
            if summaries and summaries[-1] >= 6:
                break
    finally:
        process.send_signal(signal.SIGINT)
        # Keep reading while it stops: a terminal nobody reads fills up, and devhost would block writing to it.
        stop_by = time.monotonic() + 20
        while process.poll() is None and time.monotonic() < stop_by:
            if select.select([controller], [], [], 0.2)[0]:
                try:
                    seen += os.read(controller, 65536)
                except OSError:
                    break
        if process.poll() is None:
            process.kill()
            process.wait(10)
        os.close(controller)
    text = seen.decode(errors="replace")
    assert process.returncode == 0, text[-2000:]  # Ctrl-C stops it cleanly
    statuses = STATUS.findall(text)
    assert len(statuses) >= 3, text[-2000:]
    assert int(statuses[-1][1].replace(",", "")) >= 6  # summaries went up while we watched
    assert all(failed == "0" for _, _, failed in statuses)
    assert any(float(rate.replace(",", "")) > 0 for rate, _, _ in statuses)
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if "summarised" in line]
    assert lines, text[-2000:]
    assert all(not line.lstrip("\r\x1b[2K").startswith("{") for line in lines)
    assert any(
        re.search(r"\[\d\d:\d\d:\d\d\] summarise_readings INFO: summarised \d+ readings", line) for line in lines
    )

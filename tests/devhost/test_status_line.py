"""devhost's status line: figures from the app's metrics, rates over a window, plain lines off a terminal."""

from __future__ import annotations

import io
import json
import logging
import threading

from devhost.console import ConsoleHandler, json_formatter
from devhost.status_line import StatusReporter, measure, render
from shared.ops.metrics import PipelineMetrics


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def stopped() -> threading.Event:
    """A stop signal already given: the reporter's own thread ends at once, so the test's ticks are the only ones
    (the thread ticks on the real clock, every second in a terminal)."""
    stop = threading.Event()
    stop.set()
    return stop


def live_reporter(metrics: PipelineMetrics, clock: Clock) -> tuple[StatusReporter, io.StringIO]:
    stream = io.StringIO()
    reporter = StatusReporter(metrics, ConsoleHandler(stream, live_status=True), stopped(), clock=clock)
    return reporter, stream


def test_in_a_terminal_the_rate_is_over_the_last_five_seconds_and_drawn_in_place(frozen_now_ms: int) -> None:
    metrics, clock = PipelineMetrics(), Clock()
    reporter, stream = live_reporter(metrics, clock)
    reporter.start()
    try:
        for _ in range(10):  # ten seconds at 100 readings/s, all 0.3 s behind
            clock.now += 1.0
            metrics.summarised("cosmos-readings", 100, 10, [frozen_now_ms - 300] * 100)
            status = reporter.tick()
        assert status.readings_per_second == 100.0
        assert status.lag_p95_seconds == 0.5
        assert status.summaries == 100
        clock.now += 5.0  # then nothing for five seconds
        idle = reporter.tick()
        assert idle.readings_per_second == 0.0
        assert idle.lag_p50_seconds is None
    finally:
        reporter.join(10)
    out = stream.getvalue()
    assert out.count("\r\x1b[2K▶") == 11
    assert "100.0 readings/s · lag p50 ≤ 0.5 s, p95 ≤ 0.5 s · 100 summaries · 0 failed · 0 dead letters" in out
    assert "\n" not in out  # redrawn in place, never scrolled


def test_off_a_terminal_each_line_covers_the_time_since_the_last_one_and_is_json() -> None:
    metrics, clock, stream = PipelineMetrics(), Clock(), io.StringIO()
    handler = ConsoleHandler(stream, live_status=False)
    handler.setFormatter(json_formatter())
    logger = logging.getLogger("devhost.status")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    reporter = StatusReporter(metrics, handler, stopped(), plain_every=30, clock=clock)
    try:
        reporter.start()
        clock.now += 30
        metrics.summarised("x", 600, 60, [])
        metrics.invocations.labels("summarise_readings", "failed").inc()
        reporter.tick()
        clock.now += 30
        reporter.tick()
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["event"] == "status"
    assert first["readings_per_second"] == 20.0
    assert first["summaries"] == 60 and first["failed_invocations"] == 1
    assert second["readings_per_second"] == 0.0 and second["summaries"] == 60
    assert first["message"].startswith("▶ 20.0 readings/s")


def test_lag_is_shown_in_the_unit_that_reads_best(frozen_now_ms: int) -> None:
    metrics = PipelineMetrics()
    metrics.summarised("x", 2, 1, [frozen_now_ms - 200_000] * 2)
    text = render(measure(metrics.totals(), None, 1.0))
    assert "lag p50 ≤ 5 min, p95 ≤ 5 min" in text


def test_the_firing_alerts_are_counted_on_the_status_line() -> None:
    metrics = PipelineMetrics()
    assert render(measure(metrics.totals(), None, 1.0)).endswith("· 0 alerts firing")
    metrics.firing_alerts({"critical": 1})
    assert render(measure(metrics.totals(), None, 1.0)).endswith("· 1 alert firing")
    metrics.firing_alerts({"critical": 2, "warning": 3})
    status = measure(metrics.totals(), None, 1.0)
    assert status.fields()["alerts_firing"] == 5 and render(status).endswith("· 5 alerts firing")

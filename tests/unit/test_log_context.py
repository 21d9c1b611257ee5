"""Invocation fields on log records: they reach every line inside the invocation, follow it into threads and
tasks it starts, never leak into the next invocation, and never overwrite a field one call set itself."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from devhost.console import ConsoleHandler, ReadableFormatter, app_records_as_json
from shared.ops.invocation import observed
from shared.ops.log_context import LogFieldsFilter, app_logger, log_fields
from shared.ops.metrics import PROCESS_METRICS


class Invocation:
    def __init__(self, invocation_id: str) -> None:
        self.invocation_id = invocation_id


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """The app's records as JSON lines, as devhost writes them outside a terminal."""
    stream = io.StringIO()
    with app_records_as_json(stream, logging.DEBUG):
        yield stream


def records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_every_line_inside_an_invocation_names_it_and_the_ids_that_matter(lines: io.StringIO) -> None:
    logger = app_logger("tests.x")
    with observed("summarise_events", Invocation("inv-1"), trigger="eventhub", hub="telemetry"):
        logger.info("summarised %d readings", 4, extra={"event": "summarised", "readings": 4})
        with log_fields(sensor_id="sensor-0001"):
            logger.warning("dead-lettered")
    logger.info("outside")
    first, second, outside = records(lines)
    assert first["message"] == "summarised 4 readings"
    assert first["invocation_id"] == "inv-1"
    assert first["function"] == "summarise_events"
    assert first["hub"] == "telemetry"
    assert first["readings"] == 4
    assert first["level"] == "INFO"
    assert first["logger"] == "sensorpulse.tests.x"
    assert str(first["time"]).endswith("+00:00")
    assert second["sensor_id"] == "sensor-0001" and second["invocation_id"] == "inv-1"
    assert "invocation_id" not in outside and "function" not in outside


def test_a_field_given_to_one_call_wins_over_the_invocations(lines: io.StringIO) -> None:
    with log_fields(sensor_id="from-invocation"):
        app_logger("t").info("x", extra={"sensor_id": "from-call"})
    assert records(lines)[0]["sensor_id"] == "from-call"


def test_fields_follow_the_invocation_into_asyncio_threads(lines: io.StringIO) -> None:
    async def invocation() -> None:
        with observed("forward_people_counter", Invocation("inv-async"), recType="io.microshare.peoplecounter"):
            await asyncio.to_thread(app_logger("t").info, "in a worker thread")

    asyncio.run(invocation())
    (record,) = records(lines)
    assert record["invocation_id"] == "inv-async"
    assert record["recType"] == "io.microshare.peoplecounter"


def test_concurrent_invocations_keep_their_own_ids(lines: io.StringIO) -> None:
    async def one(name: str) -> None:
        with observed("f", Invocation(name)):
            await asyncio.sleep(0.01)
            app_logger("t").info(name)

    async def both() -> None:
        await asyncio.gather(one("a"), one("b"))

    asyncio.run(both())
    assert {(r["message"], r["invocation_id"]) for r in records(lines)} == {("a", "a"), ("b", "b")}


def test_a_failed_invocation_is_counted_logged_with_its_error_type_and_re_raised(lines: io.StringIO) -> None:
    failed = PROCESS_METRICS.invocations.labels("explodes", "failed")
    before = failed._value.get()
    with pytest.raises(ZeroDivisionError), observed("explodes", Invocation("inv-2")):
        _ = 1 / 0
    assert failed._value.get() == before + 1
    (record,) = records(lines)
    assert record["event"] == "invocation_failed"
    assert record["error"] == "ZeroDivisionError"
    assert record["invocation_id"] == "inv-2"
    assert record["level"] == "ERROR"


def test_a_field_named_like_a_log_record_attribute_is_refused() -> None:
    with pytest.raises(ValueError, match="msg"), log_fields(msg="x"):
        pass


def test_in_a_terminal_lines_are_readable_and_the_status_line_is_redrawn_below_them() -> None:
    stream = io.StringIO()
    handler = ConsoleHandler(stream, live_status=True)
    handler.setFormatter(ReadableFormatter())
    handler.addFilter(LogFieldsFilter())
    logger = logging.getLogger("tests.console")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        handler.show_status("▶ 1.0 readings/s")
        with log_fields(function="simulate_sensors"):
            logger.warning("hello")
        handler.clear_status()
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    clear = "\r\x1b[2K"
    assert out.startswith(clear + "▶ 1.0 readings/s" + clear)  # the status is cleared before the line
    assert "simulate_sensors WARNING: hello\n" + "▶ 1.0 readings/s" in out  # and drawn again after it
    assert out.endswith(clear)
    assert "{" not in out

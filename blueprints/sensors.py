"""Sensors: the temperature simulator on a timer."""

from datetime import UTC, datetime

import azure.functions as func

from shared.app import services
from shared.intake.simulator import sensor_ids
from shared.ops.invocation import observed_function
from shared.ops.log_context import app_logger

logger = app_logger(__name__)
bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library's __init__ is unannotated


@bp.function_name("simulate_sensors")
@bp.retry(strategy="fixed_delay", max_retry_count="3", delay_interval="00:00:02")
@bp.timer_trigger(arg_name="timer", schedule="%SIMULATOR_SCHEDULE%", run_on_startup=True, use_monitor=False)
@observed_function("simulate_sensors", trigger="timer")
def simulate_sensors(timer: func.TimerRequest, context: func.Context) -> None:
    """Emit every simulated reading due since the last run into `readings`."""
    app = services()
    readings = app.simulator.run(sensor_ids(app.settings.sensor_count), datetime.now(UTC))
    app.metrics.readings_simulated.inc(len(readings))
    logger.info("simulated %d readings", len(readings), extra={"event": "simulated", "readings": len(readings)})

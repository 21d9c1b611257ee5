"""Called once by function_app.py: the app's log level (LOG_LEVEL) and, when its connection string is set,
Application Insights (shared.monitoring)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from shared.log_context import APP_LOGGER
from shared.metrics import get_metrics
from shared.monitoring import configure_monitoring
from shared.settings import log_level_from_env


def configure_observability(environ: Mapping[str, str]) -> None:
    logging.getLogger(APP_LOGGER).setLevel(log_level_from_env(environ))
    configure_monitoring(environ, get_metrics())

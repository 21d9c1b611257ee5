"""Sensor Pulse function app: composes the blueprints and sets up logging, metrics export and the garbage
collector, nothing else."""

import os

import azure.durable_functions as df
import azure.functions as func

from blueprints import alerts, dashboard, imports, ingest, microshare, sensors, series, summariser
from shared.ops.garbage_collection import tune_after_load
from shared.ops.observability import configure_observability

configure_observability(os.environ)

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(sensors.bp)
app.register_functions(summariser.bp)
app.register_functions(ingest.bp)
app.register_functions(dashboard.bp)
app.register_functions(series.bp)
app.register_functions(microshare.bp)
app.register_functions(alerts.bp)
app.register_functions(imports.bp)

tune_after_load()  # last: the app is loaded

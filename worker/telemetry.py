"""Prometheus metrics for a worker process: the SDK's own metrics and Flowtide's, on one endpoint."""

from __future__ import annotations

import os


def install_prometheus(port: int, host: str | None = None) -> str:
    """Make the SDK's default runtime export metrics on ``host:port``; call before connecting a client.

    Flowtide's own metrics (``flowtide_*``, see ``workflows.metrics``) go through the same runtime's
    metric meter, so one scrape returns both. ``FLOWTIDE_METRICS_HOST`` (default 0.0.0.0) picks the interface.
    """
    from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
    bind = f"{host or os.environ.get('FLOWTIDE_METRICS_HOST', '0.0.0.0')}:{port}"
    runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=bind)))
    Runtime.set_default(runtime, error_if_already_set=False)
    return bind

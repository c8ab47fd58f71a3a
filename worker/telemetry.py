"""The Temporal SDK runtime of a Flowtide process: core logs forwarded to Python logging, Prometheus metrics,
the tracing interceptor."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from flowtide.guards import tracing

if TYPE_CHECKING:
    from temporalio.runtime import Runtime


def _runtime(metrics_bind: str | None = None) -> Runtime:
    from temporalio.runtime import LogForwardingConfig, LoggingConfig, PrometheusConfig, Runtime, TelemetryConfig
    # the SDK core (Rust) writes its own text lines to stderr by default; forwarded, they go through the
    # same formatter as every other line (JSON off a terminal, see client.cli.logs)
    logs = LoggingConfig(filter=LoggingConfig.default.filter,
                         forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")))
    metrics = PrometheusConfig(bind_address=metrics_bind) if metrics_bind else None
    return Runtime(telemetry=TelemetryConfig(logging=logs, metrics=metrics))


def install_runtime() -> bool:
    """Make the forwarding runtime the SDK's default unless a default exists already (call before connecting)."""
    from temporalio.runtime import Runtime
    try:
        Runtime.set_default(_runtime(), error_if_already_set=True)
    except RuntimeError:
        return False  # a client exists already: keep its runtime
    return True


def install_prometheus(port: int, host: str | None = None) -> str:
    """Make the SDK's default runtime export metrics on ``host:port``; call before connecting a client.

    Flowtide's own metrics (``flowtide_*``, see ``workflows.engine.metrics``) go through the same runtime's
    metric meter, so one scrape returns both. ``FLOWTIDE_METRICS_HOST`` (default 0.0.0.0) picks the interface.
    """
    from temporalio.runtime import Runtime
    bind = f"{host or os.environ.get('FLOWTIDE_METRICS_HOST', '0.0.0.0')}:{port}"
    Runtime.set_default(_runtime(bind), error_if_already_set=False)
    return bind


def tracing_interceptors() -> list[Any]:
    """The Temporal interceptor that carries a trace from a client call into workflows and activities, when
    tracing is on (``guards.tracing``); none, and no import of OpenTelemetry, when it is off.

    Set on the client (``client.connect``), it applies to every worker built on that client too.

    Raises:
        guards.tracing.TracingConfigError: the environment asks for traces and the ``otel`` extra is missing.
    """
    if not tracing.setup():
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor
    return [TracingInterceptor(tracing.tracer())]

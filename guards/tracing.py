"""OpenTelemetry traces of a Flowtide process: whether they are on, the tracer, W3C context in and out, log ids.

Tracing is an optional extra (``pip install 'flowtide[otel]'``), configured by the environment (docs/tracing.md):
``FLOWTIDE_OTEL=1`` turns it on, so does an ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) unless
``FLOWTIDE_OTEL=0``. Spans are exported over OTLP/HTTP by the SDK's exporter, which reads the standard
``OTEL_EXPORTER_OTLP_*`` variables itself. Off, nothing here imports ``opentelemetry`` and every hook is one test
of ``enabled()``.

It lives in ``guards`` because every room that traces reaches it: the service (its requests), the client (the
Temporal interceptor, through ``worker.telemetry``), the activities and the network guard (the outbound calls).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

ENV_FLAG = "FLOWTIDE_OTEL"
ENDPOINT_ENVS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
INSTRUMENTATION = "flowtide"
INSTALL_HINT = "pip install 'flowtide[otel]'"

_ON = ("1", "true", "yes", "on")
_OFF = ("0", "false", "no", "off")
_state: dict[str, Any] = {}  # "provider", "tracer": set while tracing is on in this process
_declined: list[bool] = []  # an endpoint without the extra: warned once, then untraced


class TracingConfigError(RuntimeError):
    """Tracing is asked for by the environment but cannot start: the ``otel`` extra is missing, or the switch is
    malformed."""


def wanted() -> bool:
    """Whether the environment asks for traces: ``FLOWTIDE_OTEL`` if set, else whether an OTLP endpoint is."""
    flag = os.environ.get(ENV_FLAG, "").strip().lower()
    if flag in _ON:
        return True
    if flag in _OFF:
        return False
    if flag:
        raise TracingConfigError(f"{ENV_FLAG}={flag!r} is neither on (1, true, yes, on) nor off (0, false, no, off)")
    return any(os.environ.get(name) for name in ENDPOINT_ENVS)


def enabled() -> bool:
    """Whether this process traces now (``setup()`` or ``use()`` ran)."""
    return "tracer" in _state


def setup() -> bool:
    """Start tracing as the environment asks, once per process; returns ``enabled()``.

    Raises:
        TracingConfigError: ``FLOWTIDE_OTEL`` turns tracing on and the ``otel`` extra is missing, or it is
            malformed. An OTLP endpoint alone without the extra only logs a warning: it may be meant for others.
    """
    if enabled() or _declined or not wanted():
        return enabled()
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        missing = f"the OpenTelemetry packages are missing ({exc.name}): {INSTALL_HINT}"
        if os.environ.get(ENV_FLAG):
            raise TracingConfigError(f"{ENV_FLAG} turns tracing on but {missing}") from None
        # an endpoint alone may be set for other programs (a cluster-wide collector): say so, run untraced
        _declined.append(True)
        logging.getLogger(__name__).warning("an OTLP endpoint is set but %s; Flowtide runs without traces "
                                            "(%s=0 silences this)", missing, ENV_FLAG)
        return False
    name = os.environ.get("OTEL_SERVICE_NAME") or "flowtide"
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # flushed at exit by the provider
    trace.set_tracer_provider(provider)  # other libraries' spans join the same traces
    use(provider)
    return True


def use(provider: TracerProvider) -> Tracer:
    """Trace with ``provider`` from now on (``setup()`` calls it; tests pass one with an in-memory exporter)."""
    _state["provider"] = provider
    _state["tracer"] = provider.get_tracer(INSTRUMENTATION)
    return tracer()


def stop() -> None:
    """Stop tracing in this process (tests); spans already started still end and export."""
    _state.clear()


def tracer() -> Tracer:
    """The process's tracer; only while ``enabled()``."""
    return cast("Tracer", _state["tracer"])


def extract(headers: Any) -> Any:
    """The OpenTelemetry context of an incoming W3C ``traceparent``/``tracestate`` in ``headers`` (a mapping)."""
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    return TraceContextTextMapPropagator().extract(headers)


def inject(headers: MutableMapping[str, str]) -> None:
    """Write the current span's W3C ``traceparent`` (and ``tracestate``) into ``headers``; baggage never leaves."""
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    TraceContextTextMapPropagator().inject(headers)


@contextmanager
def span(name: str, *, kind: str = "INTERNAL", context: Any = None,
         attributes: dict[str, Any] | None = None) -> Iterator[Span]:
    """A current span of ``kind`` (a ``SpanKind`` name) under ``context`` (default: the current span)."""
    from opentelemetry.trace import SpanKind
    with tracer().start_as_current_span(name, context=context, kind=SpanKind[kind],
                                        attributes=attributes) as current:
        yield current


@contextmanager
def outbound(method: str, url: Any, headers: MutableMapping[str, str]) -> Iterator[Span]:
    """The CLIENT span of one outbound HTTP request (one hop of a redirect chain); its ``traceparent`` goes in
    ``headers``, replacing one the step set. The path and query are not recorded: they often carry secrets."""
    attributes = {"http.request.method": method, "url.scheme": url.scheme, "server.address": url.host,
                  "server.port": url.port or (443 if url.scheme == "https" else 80)}
    with span(f"HTTP {method}", kind="CLIENT", attributes=attributes) as current:
        for name in [k for k in headers if k.lower() in ("traceparent", "tracestate")]:
            del headers[name]
        inject(headers)
        yield current


def answered(current: Span, status: int, *, server: bool = False) -> None:
    """Record an HTTP answer's status on ``current``: 5xx marks it failed, and 4xx too on a CLIENT span (the
    semantic conventions: a caller's mistake is not the server's failure)."""
    from opentelemetry.trace import Status, StatusCode
    current.set_attribute("http.response.status_code", status)
    if status >= (500 if server else 400):
        current.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))


def log_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: ``trace_id`` and ``span_id`` (hex, as backends show them) of the current span."""
    if not _state:
        return event
    from opentelemetry.trace import get_current_span
    ctx = get_current_span().get_span_context()
    if ctx.is_valid:
        event.setdefault("trace_id", format(ctx.trace_id, "032x"))
        event.setdefault("span_id", format(ctx.span_id, "016x"))
    return event

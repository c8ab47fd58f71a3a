"""The API's server spans: one per HTTP request, continuing the caller's W3C ``traceparent`` when it sends one.

Added to the app only while tracing is on (``guards.tracing``); the Temporal client's interceptor then carries
the request's span into the run it starts, so a run started over the API is one trace with its request.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flowtide.guards import tracing


class TraceRequests:
    """Pure ASGI middleware: a SERVER span named ``<METHOD> <route>`` around each HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not tracing.enabled():
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])
                   if k in (b"traceparent", b"tracestate")}
        method = scope["method"]
        with tracing.span(method, kind="SERVER", context=tracing.extract(headers),
                          attributes={"http.request.method": method, "url.scheme": scope.get("scheme", "http")}
                          ) as span:

            async def sending(message: Message) -> None:
                if message["type"] == "http.response.start":
                    tracing.answered(span, message["status"], server=True)
                await send(message)

            try:
                await self.app(scope, receive, sending)
            finally:
                route = getattr(scope.get("route"), "path", None)  # the template, not the ids in the path
                if route:
                    span.set_attribute("http.route", route)
                    span.update_name(f"{method} {route}")
                rid = scope.get("state", {}).get("request_id")
                if rid:
                    span.set_attribute("flowtide.request_id", rid)

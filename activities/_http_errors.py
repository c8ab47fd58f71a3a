"""The HTTP family's error mapping: response statuses and httpx exceptions to taxonomy codes.

``map_http_exception`` is the family mapper given to ``step_activity``; ``status_failure`` turns a
4xx/5xx response into the operational error of docs/error-handling.md. The provider's own text is always kept
in the message.
"""

from __future__ import annotations

import errno
import math
import socket
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from flowtide.workflows.errors import StepFailure

RETRY_AFTER_CAP_S = 3600.0

# Every exception class httpx exports, with its code before the OS error inside is looked at. The
# lookup walks the MRO, so a subclass httpx adds later still gets its parent's code, and the unit test
# that enumerates ``httpx.__all__`` fails until the new class is listed here on purpose.
HTTPX_EXCEPTION_CODES: dict[type[BaseException], str] = {
    httpx.HTTPError: "UNKNOWN_ERROR",
    httpx.RequestError: "HTTP_CONNECTION_FAILED",
    httpx.TransportError: "HTTP_CONNECTION_FAILED",
    httpx.TimeoutException: "HTTP_TIMEOUT",
    httpx.ConnectTimeout: "ETIMEDOUT",
    httpx.ReadTimeout: "HTTP_TIMEOUT",
    httpx.WriteTimeout: "HTTP_TIMEOUT",
    httpx.PoolTimeout: "HTTP_TIMEOUT",
    httpx.NetworkError: "HTTP_CONNECTION_FAILED",
    httpx.ConnectError: "HTTP_CONNECTION_FAILED",  # refined: ECONNREFUSED, ENOTFOUND, EAI_AGAIN ...
    httpx.ReadError: "ECONNRESET",
    httpx.WriteError: "ECONNRESET",
    httpx.CloseError: "HTTP_CONNECTION_FAILED",
    httpx.ProxyError: "HTTP_CONNECTION_FAILED",
    httpx.UnsupportedProtocol: "HTTP_INVALID_REQUEST",
    httpx.ProtocolError: "HTTP_PROTOCOL_ERROR",
    httpx.LocalProtocolError: "HTTP_PROTOCOL_ERROR",  # our side could not encode it: never retried
    httpx.RemoteProtocolError: "HTTP_PROTOCOL_ERROR",
    httpx.DecodingError: "HTTP_INVALID_RESPONSE",
    httpx.TooManyRedirects: "HTTP_TOO_MANY_REDIRECTS",
    httpx.HTTPStatusError: "HTTP_CLIENT_ERROR",  # refined by the response status
    httpx.InvalidURL: "HTTP_INVALID_REQUEST",
    httpx.CookieConflict: "HTTP_INVALID_REQUEST",
    # Stream misuse is a bug in the step, not a network condition; keep the text, retry optimistically.
    httpx.StreamError: "UNKNOWN_ERROR",
    httpx.StreamConsumed: "UNKNOWN_ERROR",
    httpx.StreamClosed: "UNKNOWN_ERROR",
    httpx.ResponseNotRead: "UNKNOWN_ERROR",
    httpx.RequestNotRead: "UNKNOWN_ERROR",
}

_NOT_FOUND_EAI = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}
_ERRNO_CODES = {
    errno.ECONNREFUSED: "ECONNREFUSED",
    errno.ECONNRESET: "ECONNRESET",
    errno.EPIPE: "ECONNRESET",
    errno.ECONNABORTED: "ECONNRESET",
    errno.ETIMEDOUT: "ETIMEDOUT",
}


def status_code_for(status: int) -> str:
    """The taxonomy code of an error status (>= 400).

    401/403 are ``HTTP_UNAUTHORIZED`` (class ``auth``) so that even the ``aggressive`` preset does not retry
    refused credentials; every other 4xx but 408/429 is ``HTTP_CLIENT_ERROR`` with the status kept in
    ``providerStatus``.
    """
    if status == 429:
        return "HTTP_RATE_LIMITED"
    if status == 408:
        return "HTTP_TIMEOUT"
    if status in (401, 403):
        return "HTTP_UNAUTHORIZED"
    if status >= 500:
        return "HTTP_SERVER_ERROR"
    return "HTTP_CLIENT_ERROR"


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP-date), capped at one hour.

    Args:
        value: the header value, if any.
        now: the current time (tests).

    Returns:
        The delay, or ``None`` when the header is absent or unreadable.
    """
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_CAP_S)


def status_failure(method: str, url: str, response: httpx.Response, output: Any, detail: str) -> StepFailure:
    """The operational error for a 4xx/5xx response; ``output`` stays readable as the step output."""
    status = response.status_code
    return StepFailure(status_code_for(status), f"{method} {url} returned {status}", type="operational",
                       provider_status=status, detail=detail, output=output,
                       retry_after_s=retry_after_seconds(response.headers.get("retry-after")))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes and contexts, and the members of exception groups, each once."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        if isinstance(e, BaseExceptionGroup):
            todo.extend(e.exceptions)
        for nxt in (e.__cause__, e.__context__):
            if nxt is not None:
                todo.append(nxt)


def _os_code(exc: BaseException) -> tuple[str, BaseException] | None:
    """The network code an OS-level error inside ``exc`` stands for, with that error.

    An OS error with no specific code still comes back (as ``HTTP_CONNECTION_FAILED``) for its text.
    """
    other: BaseException | None = None
    for e in _chain(exc):
        if isinstance(e, socket.gaierror):
            if e.errno in _NOT_FOUND_EAI:
                return "ENOTFOUND", e
            if e.errno == socket.EAI_AGAIN:
                return "EAI_AGAIN", e
            return "HTTP_CONNECTION_FAILED", e
        if isinstance(e, ssl.SSLError):
            return "HTTP_CONNECTION_FAILED", e
        if isinstance(e, ConnectionRefusedError):
            return "ECONNREFUSED", e
        if isinstance(e, OSError) and e.errno in _ERRNO_CODES:
            return _ERRNO_CODES[e.errno], e
        if isinstance(e, OSError) and e.errno is not None and other is None:
            other = e
    return ("HTTP_CONNECTION_FAILED", other) if other is not None else None


def _where(exc: BaseException) -> str:
    """``"GET http://host/path: "`` when the exception knows its request."""
    try:
        request = exc.request  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):  # httpx raises RuntimeError when no request is attached
        return ""
    return f"{request.method} {request.url.copy_with(username=None, password=None)}: "


def _exc_text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def map_http_exception(exc: BaseException) -> StepFailure | None:
    """Map an httpx (or socket / TLS) exception to a taxonomy ``StepFailure``; ``None`` if unknown.

    Args:
        exc: what escaped the step.

    Returns:
        The failure, with the provider's text in ``message`` and the OS error (if any) in ``detail``.
    """
    if isinstance(exc, StepFailure):
        return exc
    if isinstance(exc, httpx.HTTPStatusError):
        response = exc.response
        return StepFailure(status_code_for(response.status_code), f"{_where(exc)}{exc}", type="operational",
                           provider_status=response.status_code,
                           retry_after_s=retry_after_seconds(response.headers.get("retry-after")))
    code = next((HTTPX_EXCEPTION_CODES[c] for c in type(exc).__mro__ if c in HTTPX_EXCEPTION_CODES), None)
    found = _os_code(exc)
    text = _exc_text(exc)
    if found is not None and found[1] is not exc and _exc_text(found[1]) not in text:
        text = f"{text} ({_exc_text(found[1])})"
    retryable: bool | None = None
    if isinstance(exc, httpx.ConnectError | httpx.ReadError | httpx.WriteError) and found is not None:
        code = found[0]
    elif code is None and isinstance(exc, OSError):
        code = found[0] if found else ("HTTP_TIMEOUT" if isinstance(exc, TimeoutError) else "HTTP_CONNECTION_FAILED")
    elif code is None and isinstance(exc, UnicodeEncodeError):
        code, retryable = "HTTP_INVALID_REQUEST", False  # a header value that is not latin-1
    if code is None:
        return None
    if isinstance(exc, httpx.LocalProtocolError) or (found and isinstance(found[1], ssl.SSLCertVerificationError)):
        retryable = False  # the same request fails the same way: bad header, untrusted certificate
    name = f"{type(exc).__module__.split('.')[0]}.{type(exc).__name__}"
    return StepFailure(code, f"{_where(exc)}{text}", detail=name, retryable=retryable)

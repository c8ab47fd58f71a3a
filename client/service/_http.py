"""Request plumbing: request ids, the error wrapper (never a traceback), body limits, content types, parameters."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
import yaml
from sqlalchemy.exc import OperationalError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from temporalio.service import RPCError, RPCStatusCode

from flowtide.client.connect import TemporalUnreachable
from flowtide.client.service.errors import ApiError, error_response
from flowtide.workflows.language import json_safe, yaml_load

Handler = Callable[[Request], Awaitable[Response]]
JSON_TYPES = ("application/json",)
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
_UNREACHABLE = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)


def request_id(request: Request) -> str:
    rid = request.scope.setdefault("state", {}).get("request_id")
    if rid is None:
        rid = uuid.uuid4().hex[:16]
        request.scope["state"]["request_id"] = rid
    return str(rid)


def _log(level: str, event: str, **fields: Any) -> None:
    """Log through structlog as configured now; a broken log sink must not turn an answer into a crash."""
    try:
        getattr(structlog.get_logger("flowtide.service"), level)(event, **fields)
    except Exception:  # the answer matters more than its log line
        pass


def as_api_error(exc: Exception, rid: str) -> ApiError:
    """The answer for any exception of a handler; a bug is logged with the request id and answered 500."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, TemporalUnreachable) or (isinstance(exc, RPCError) and exc.status in _UNREACHABLE):
        _log("warning", "temporal unreachable", request_id=rid, error=str(exc)[:300])
        return ApiError("TEMPORAL_UNAVAILABLE", "Temporal cannot be reached; retry later")
    if isinstance(exc, OperationalError):
        _log("warning", "database unreachable", request_id=rid, error=str(exc.orig)[:300])
        return ApiError("TEMPORAL_UNAVAILABLE", "the service database cannot be reached; retry later")
    _log("error", "internal error", request_id=rid, exc_info=exc)
    return ApiError("INTERNAL", f"internal error (request id {rid}); it has been logged")


def endpoint(fn: Handler) -> Handler:
    """Wrap a route: every failure becomes a seed-002 body with the request id."""

    @functools.wraps(fn)
    async def run(request: Request) -> Response:
        rid = request_id(request)
        try:
            response = await fn(request)
        except Exception as exc:
            return error_response(as_api_error(exc, rid), rid)
        response.headers["x-request-id"] = rid
        return response

    return run


def ok(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(json_safe(body), status_code=status)  # never a 500 for NaN recorded in a run


async def read_body(request: Request, max_body: int, types: tuple[str, ...] = JSON_TYPES,
                    optional: bool = False) -> bytes:
    """The raw body, at most ``max_body`` bytes, of one of ``types`` (any type when ``optional`` and empty).

    Raises:
        ApiError: ``PAYLOAD_TOO_LARGE`` or ``UNSUPPORTED_MEDIA_TYPE``.
    """
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_body:
        raise ApiError("PAYLOAD_TOO_LARGE", f"the body is larger than {max_body} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_body:
            raise ApiError("PAYLOAD_TOO_LARGE", f"the body is larger than {max_body} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if optional and not raw.strip():
        return raw
    if ctype not in types:
        raise ApiError("UNSUPPORTED_MEDIA_TYPE", f"content type '{ctype or 'none'}' is not accepted here "
                       f"(send {' or '.join(types[:2] if types != JSON_TYPES else types)})")
    return raw


def parse_body(raw: bytes, request: Request) -> Any:
    """JSON (or YAML when the content type says so) from ``raw``.

    Raises:
        ApiError: ``BAD_REQUEST`` for malformed text.
    """
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        text = raw.decode("utf-8")
        if ctype in YAML_TYPES:  # the flows' own YAML reading: the same document `flowtide run` would see
            return yaml_load(text)
        return json.loads(text) if text.strip() else None
    except UnicodeDecodeError:
        raise ApiError("BAD_REQUEST", "the body is not UTF-8 text") from None
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ApiError("BAD_REQUEST", f"malformed {'YAML' if ctype in YAML_TYPES else 'JSON'}: {exc}"[:500]) from None


def object_body(value: Any, what: str = "the body") -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError("BAD_REQUEST", f"{what} must be a JSON object")
    return value


def number_param(request: Request, name: str, low: float, high: float, *, integer: bool = False) -> float | None:
    """A numeric query parameter within ``[low, high]``, or None when absent.

    Raises:
        ApiError: ``BAD_REQUEST`` when it is not a number in range.
    """
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise ApiError("BAD_REQUEST", f"query parameter '{name}': not {kind}") from None
    if not low <= value <= high:
        raise ApiError("BAD_REQUEST", f"query parameter '{name}': must be between {low:g} and {high:g}")
    return value

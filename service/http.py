"""Request plumbing: request ids, the error wrapper (never a traceback), body limits, content types, parameters."""

from __future__ import annotations

import asyncio
import functools
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
import yaml
from sqlalchemy.exc import OperationalError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from temporalio.service import RPCError, RPCStatusCode

from flowtide.client.connect import TemporalUnreachable
from flowtide.service.errors import ApiError, error_response
from flowtide.workflows.language import FLOW_ID_RE, json_safe, yaml_load

Handler = Callable[[Request], Awaitable[Response]]
JSON_TYPES = ("application/json",)
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
_UNREACHABLE = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)
# ASCII digits only: str.isdigit() and int() also take '²', '٣', '+1', ' 1' and '1_000'; 18 digits fit an int64
_INTEGER = re.compile(r"[0-9]{1,18}")
_DECIMAL = re.compile(r"[0-9]{1,18}(?:\.[0-9]{1,9})?")
MAX_REVISION = 2**31 - 1  # flow revisions are a 32-bit INTEGER column on every database
DEFAULT_BODY_TIMEOUT_S = 30.0


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


async def read_limited(request: Request, max_body: int, timeout_s: float) -> bytes:
    """The whole body, at most ``max_body`` bytes, arriving within ``timeout_s`` seconds in all.

    Raises:
        ApiError: ``PAYLOAD_TOO_LARGE``, or ``REQUEST_TIMEOUT`` for a body that trickles or stops.
    """
    length = ascii_number(request.headers.get("content-length") or "", 0, float("inf"))
    if length is not None and length > max_body:
        raise ApiError("PAYLOAD_TOO_LARGE", f"the body is larger than {max_body} bytes")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout_s):  # one deadline for the whole body, not per chunk
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_body:
                    raise ApiError("PAYLOAD_TOO_LARGE", f"the body is larger than {max_body} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise ApiError("REQUEST_TIMEOUT", f"the request body did not arrive within {timeout_s:g} s") from None
    except ClientDisconnect:  # nobody reads the answer, but the request ends as the caller's doing, not a 500
        raise ApiError("BAD_REQUEST", "the client closed the connection before its body arrived") from None
    return b"".join(chunks)


async def read_body(request: Request, max_body: int, types: tuple[str, ...] = JSON_TYPES,
                    optional: bool = False) -> bytes:
    """The raw body (see ``read_limited``) of one of ``types`` (any type when ``optional`` and empty).

    Raises:
        ApiError: ``PAYLOAD_TOO_LARGE``, ``REQUEST_TIMEOUT`` or ``UNSUPPORTED_MEDIA_TYPE``.
    """
    raw = await read_limited(request, max_body, request.app.state.svc.body_timeout)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if optional and not raw.strip():
        return raw
    if ctype not in types:
        raise ApiError("UNSUPPORTED_MEDIA_TYPE", f"content type '{ctype or 'none'}' is not accepted here "
                       f"(send {' or '.join(types[:2] if types != JSON_TYPES else types)})")
    return raw


def json_text(text: str, what: str = "the body") -> Any:
    """JSON from ``text`` with every malformed shape a 400 that says where (never a 500).

    Raises:
        ApiError: ``BAD_REQUEST``.
    """
    try:
        return json.loads(text)
    except RecursionError:  # json.loads recurses per level: `[` * 100000 must not be a 500
        raise ApiError("BAD_REQUEST", f"{what} is nested too deeply") from None
    except json.JSONDecodeError as err:
        raise ApiError("BAD_REQUEST", f"{what}: not valid JSON at line {err.lineno}, column {err.colno}: "
                       f"{err.msg}") from None
    except ValueError as exc:  # a 5000-digit integer
        raise ApiError("BAD_REQUEST", f"{what}: {exc}"[:500]) from None


def parse_body(raw: bytes, request: Request) -> Any:
    """JSON (or YAML when the content type says so) from ``raw``.

    Raises:
        ApiError: ``BAD_REQUEST`` for malformed text.
    """
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError("BAD_REQUEST", "the body is not UTF-8 text") from None
    if ctype not in YAML_TYPES:
        return json_text(text) if text.strip() else None
    try:  # the flows' own YAML reading: the same document `flowtide run` would see
        return yaml_load(text)
    except RecursionError:
        raise ApiError("BAD_REQUEST", "the body is nested too deeply") from None
    except (ValueError, yaml.YAMLError) as exc:  # a YAML date 2024-13-01
        raise ApiError("BAD_REQUEST", f"malformed YAML: {exc}"[:500]) from None


def object_body(value: Any, what: str = "the body") -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError("BAD_REQUEST", f"{what} must be a JSON object")
    return value


def ascii_number(raw: str, low: float, high: float, *, integer: bool = True) -> int | float | None:
    """``raw`` as a number in ``[low, high]`` when it is plain ASCII digits (and one decimal point unless
    ``integer``), else None: the one parser of every number a caller sends in a path, query, header or form."""
    if (_INTEGER if integer else _DECIMAL).fullmatch(raw) is None:
        return None
    value = int(raw) if integer else float(raw)
    return value if low <= value <= high else None


def bounded_number(raw: str, what: str, low: float, high: float, *, integer: bool = True) -> int | float:
    """``ascii_number`` or a 400 that names ``what`` and its bounds.

    Raises:
        ApiError: ``BAD_REQUEST``.
    """
    value = ascii_number(raw, low, high, integer=integer)
    if value is None:
        kind = "an integer" if integer else "a number"
        raise ApiError("BAD_REQUEST", f"{what}: must be {kind} from {_shown(low)} to {_shown(high)} in ASCII "
                       f"digits (got '{raw[:24]}{'...' if len(raw) > 24 else ''}')")
    return value


def _shown(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


def number_param(request: Request, name: str, low: float, high: float, *, integer: bool = False) -> float | None:
    """A numeric query parameter within ``[low, high]``, or None when absent (see ``bounded_number``).

    Raises:
        ApiError: ``BAD_REQUEST`` when it is not a number in range.
    """
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    return bounded_number(raw, f"query parameter '{name}'", low, high, integer=integer)


def revision_value(value: Any, what: str) -> int:
    """A flow revision given as a JSON integer (``1`` .. ``MAX_REVISION``).

    Raises:
        ApiError: ``BAD_REQUEST`` naming ``what`` and the bounds.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_REVISION:
        raise ApiError("BAD_REQUEST", f"{what}: must be an integer from 1 to {MAX_REVISION}")
    return value


def path_text(request: Request, name: str, pattern: re.Pattern[str], rule: str) -> str:
    """A path parameter that must match ``pattern`` in full (``rule`` says how, in the 400).

    Raises:
        ApiError: ``BAD_REQUEST``.
    """
    value = str(request.path_params[name])
    if pattern.fullmatch(value) is None:
        raise ApiError("BAD_REQUEST", f"path parameter '{name}': {rule}")
    return value


def flow_id_param(request: Request, name: str = "flowId") -> str:
    """The flow id of the path (the flow language's own rule, so no id is stored that a document could not have).

    Raises:
        ApiError: ``BAD_REQUEST``.
    """
    return path_text(request, name, FLOW_ID_RE, "1 to 128 letters, digits, '-' and '_', the first a letter or digit")

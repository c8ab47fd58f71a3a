"""The one error shape of every non-2xx answer (docs/api.md): ``{"errors": [{"message", "extensions": {"code"}}]}``."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

# status of each code (docs/api.md); GraphQL partial failures reuse the codes with HTTP 200
STATUS = {"BAD_REQUEST": 400, "INPUT_INVALID": 400, "UNAUTHENTICATED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404,
          "REQUEST_TIMEOUT": 408, "CONFLICT": 409, "PAYLOAD_TOO_LARGE": 413, "UNSUPPORTED_MEDIA_TYPE": 415,
          "RATE_LIMITED": 429, "INTERNAL": 500, "RUN_FAILED": 502, "TEMPORAL_UNAVAILABLE": 503}


class ApiError(Exception):
    """An expected failure of a request: answered with its status and the seed-002 body.

    Attributes:
        code: the ``extensions.code`` (a key of ``STATUS``).
        status: the HTTP status (``STATUS[code]`` unless given).
        extensions: more ``extensions`` entries (``problems``, ``runId``, ...).
        headers: extra response headers (``Retry-After``).
    """

    def __init__(self, code: str, message: str, *, status: int | None = None,
                 headers: dict[str, str] | None = None, **extensions: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or STATUS[code]
        self.extensions = extensions
        self.headers = headers or {}


def error_entry(code: str, message: str, request_id: str | None = None, **extensions: Any) -> dict[str, Any]:
    """One entry of the ``errors`` list."""
    ext: dict[str, Any] = {"code": code, **extensions}
    if request_id:
        ext["requestId"] = request_id
    return {"message": message, "extensions": ext}


def error_response(err: ApiError, request_id: str | None) -> JSONResponse:
    """The answer for ``err``: its status, headers and the seed-002 body carrying the request id."""
    body = {"errors": [error_entry(err.code, err.message, request_id, **err.extensions)]}
    return JSONResponse(body, status_code=err.status, headers={**err.headers, "x-request-id": request_id or ""})


def problems_of(problems: Any) -> list[dict[str, str]]:
    """``[{"path", "message"}]`` from a ``FlowValidationError``'s problems (errors only, warnings dropped)."""
    return [{"path": p.path or "$", "message": p.message} for p in problems
            if getattr(p, "severity", "error") == "error"]

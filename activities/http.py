"""The ``core.http`` step: one HTTP request with httpx, through the SSRF guard, with a bounded body.

Input (``{{ secrets.NAME }}`` is resolved by the boundary before the step sees it)::

    {"url", "method"?: "GET", "headers"?: {name: value}, "query"?: {name: value | [values]},
     "body"?: str | JSON, "json"?: JSON, "form"?: {name: value},
     "auth"?: {"type": "bearer", "token"} | {"type": "basic", "username", "password"},
     "timeout"?: seconds per connect/read/write (default: the step timeout, which then wins: TIMEOUT),
     "followRedirects"?: true (max 10 hops),
     "responseType"?: "auto" | "json" | "text" | "binary", "idempotencyKey"?: bool | str,
     "okStatuses"?: [status, ...]}

Output: ``{"status", "headers": {lower-cased name: value}, "body"}`` plus ``"bodyEncoding": "base64"``
when the body is binary. Repeated headers are joined with ``", "``.

A status >= 400 that is not in ``okStatuses`` is an *operational* error whose output is still readable:
429 ``HTTP_RATE_LIMITED`` (``Retry-After`` honoured), 408 ``HTTP_TIMEOUT``, 401/403 ``HTTP_UNAUTHORIZED``,
other 4xx ``HTTP_CLIENT_ERROR``, 5xx ``HTTP_SERVER_ERROR``, each with ``providerStatus``. POST and PATCH
carry an ``Idempotency-Key`` header (stable across retries) unless ``idempotencyKey: false``.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from flowtide.activities._boundary import step_activity
from flowtide.activities._http_body import (
    ACCEPT_ENCODING,
    RESPONSE_TYPES,
    InvalidBody,
    declared_length,
    parse_body,
    preview,
    read_limited,
    too_large,
)
from flowtide.activities._http_errors import map_http_exception, status_failure
from flowtide.activities._step import StepContext, StepResult
from flowtide.guards.network import DestinationBlocked, pooled_client
from flowtide.workflows.errors import StepFailure
from flowtide.workflows.limits import DEFAULT_LIMITS

__all__ = ["DEFAULT_RESPONSE_LIMIT", "http_request", "map_http_exception"]

DEFAULT_RESPONSE_LIMIT = DEFAULT_LIMITS["httpResponseBytes"]
MAX_REDIRECTS = 10
USER_AGENT = "flowtide-http/0.1"
IDEMPOTENT_BY_DEFAULT = frozenset({"POST", "PATCH"})  # the methods retries would otherwise duplicate
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token: methods and header names
_FORM = "application/x-www-form-urlencoded"
# httpx logs every request's full URL at INFO, and a URL can carry a resolved {{ secrets.NAME }} (a query
# token) that the boundary redacts only from what it returns: keep that logger to warnings and worse.
logging.getLogger("httpx").setLevel(logging.WARNING)


def _invalid(message: str) -> StepFailure:
    return StepFailure("HTTP_INVALID_REQUEST", message, retryable=False)


@dataclass
class Call:
    """A validated request, ready for httpx."""

    method: str
    url: httpx.URL
    headers: dict[str, str]
    content: bytes | None
    timeout: float
    follow: bool
    response_type: str
    ok_statuses: frozenset[int]
    secrets: list[str] = field(default_factory=list)

    @property
    def shown_url(self) -> str:
        """The URL for messages: without user info (its password would leak)."""
        return str(self.url.copy_with(username=None, password=None))


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _headers(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _invalid("input.headers must be an object of header names to values")
    out: dict[str, str] = {}
    for name, value in raw.items():
        if value is None:
            continue
        text = _scalar(value)
        if not _TOKEN.fullmatch(str(name)):
            raise _invalid(f"header name {name!r} is not a valid HTTP token")
        if any(c in text for c in "\r\n\0"):
            raise _invalid(f"header {name!r} contains a line break or NUL")  # header injection
        out[str(name)] = text
    return out


def _params(raw: Any) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise _invalid("input.query must be an object of names to values")
    pairs: list[tuple[str, str]] = []
    for name, value in raw.items():
        for v in value if isinstance(value, list) else [value]:
            if v is not None:
                pairs.append((str(name), _scalar(v)))
    return tuple(pairs)


def _has(headers: dict[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)


def _content(inp: dict[str, Any], headers: dict[str, str]) -> bytes | None:
    """Encode body / json / form; sets Content-Type when the flow did not."""
    given = [k for k in ("body", "json", "form") if inp.get(k) is not None]
    if len(given) > 1:
        raise _invalid(f"use only one of body, json and form (got {', '.join(given)})")
    if not given:
        return None
    key, value = given[0], inp[given[0]]
    ctype = (_has(headers, "content-type") or "").split(";")[0].strip().lower()
    if key == "body" and isinstance(value, str):
        return value.encode("utf-8")
    if key == "body" and isinstance(value, bytes):
        return value
    if key == "form" or (ctype == _FORM and isinstance(value, dict)):
        if not isinstance(value, dict):
            raise _invalid("input.form must be an object of field names to values")
        if not ctype:
            headers["Content-Type"] = _FORM
        return str(httpx.QueryParams(_params(value))).encode("ascii")
    if not ctype:
        headers["Content-Type"] = "application/json"
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _seconds(raw: Any) -> float | None:
    """A positive number of seconds; templates may render it as a string (``"2.5"``)."""
    if raw is None or raw == "":
        return None
    try:
        value = float(raw) if not isinstance(raw, bool) else -1.0
    except (TypeError, ValueError):
        value = -1.0
    if not 0 < value < float("inf"):
        raise _invalid(f"input.timeout must be a positive number of seconds, not {raw!r}")
    return value


def _auth(raw: Any, headers: dict[str, str], secrets: list[str]) -> None:
    if raw is None:
        return
    if not isinstance(raw, dict) or raw.get("type") not in ("bearer", "basic"):
        raise _invalid('input.auth must be {"type": "bearer", "token"} or {"type": "basic", "username", "password"}')
    if raw["type"] == "bearer":
        token = raw.get("token")
        if not token:
            raise StepFailure("AUTH_MISSING", "auth.token is empty: configure the secret it names", retryable=False)
        headers["Authorization"] = f"Bearer {token}"
        secrets.append(str(token))
        return
    user, password = str(raw.get("username") or ""), str(raw.get("password") or "")
    if not user and not password:
        raise StepFailure("AUTH_MISSING", "auth.username and auth.password are empty", retryable=False)
    credential = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    headers["Authorization"] = f"Basic {credential}"
    secrets += [s for s in (password, credential) if s]  # an echo of the header must not reveal it


def build_call(inp: dict[str, Any], ctx: StepContext) -> Call:
    """Validate the step input into a ``Call``.

    Raises:
        StepFailure: ``HTTP_INVALID_REQUEST`` for bad input, ``HTTP_DESTINATION_BLOCKED`` for a scheme other
            than http(s), ``AUTH_MISSING`` for empty credentials; none of them is ever retried.
    """
    method = str(inp.get("method") or "GET").strip().upper()
    if not _TOKEN.fullmatch(method):
        raise _invalid(f"method {method!r} is not a valid HTTP method")
    ctx.method = method  # the boundary applies the POST/PATCH retry rule with it
    raw_url = inp.get("url")
    if not isinstance(raw_url, str) or not raw_url.strip():
        raise _invalid("input.url is required (an http or https URL)")
    try:
        url = httpx.URL(raw_url.strip())
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise _invalid(f"input.url is not a valid URL: {exc}") from None
    if url.scheme not in ("http", "https"):
        raise DestinationBlocked(f"scheme '{url.scheme or '(none)'}' is not allowed: HTTP steps only reach "
                                 "http and https URLs", host=url.host)
    if not url.host:
        raise _invalid(f"input.url has no host: {raw_url!r}")
    headers = _headers(inp.get("headers"))
    secrets: list[str] = []
    if url.password:  # httpx sends user info as Basic auth: hide the password and the encoded pair
        secrets += [url.password, base64.b64encode(f"{url.username}:{url.password}".encode()).decode("ascii")]
    _auth(inp.get("auth"), headers, secrets)
    content = _content(inp, headers)
    key = inp.get("idempotencyKey")
    if key is not False and _has(headers, "idempotency-key") is None:
        if isinstance(key, str) and key:
            headers["Idempotency-Key"] = key
        elif key is True or method in IDEMPOTENT_BY_DEFAULT:
            headers["Idempotency-Key"] = ctx.idempotency_key()
    if _has(headers, "user-agent") is None:
        headers["User-Agent"] = USER_AGENT
    if _has(headers, "accept-encoding") is None:
        headers["Accept-Encoding"] = ACCEPT_ENCODING  # only encodings read_limited inflates within the limit
    timeout = _seconds(inp.get("timeout"))
    response_type = str(inp.get("responseType") or "auto")
    if response_type not in RESPONSE_TYPES:
        raise _invalid(f"input.responseType must be one of {', '.join(RESPONSE_TYPES)}")
    try:
        ok = frozenset(int(s) for s in inp.get("okStatuses") or [])
    except (TypeError, ValueError):
        raise _invalid("input.okStatuses must be a list of status codes") from None
    url = url.copy_merge_params(_params(inp.get("query")))  # query names replace the same names in the URL
    # By default the step timeout (spec: a step slower than its timeout fails with TIMEOUT); the boundary's
    # deadline starts first, so it wins the tie. A shorter input timeout reads as HTTP_TIMEOUT.
    return Call(method, url, headers, content, timeout or ctx.timeout_s,
                inp.get("followRedirects") not in (False, "false"), response_type, ok, secrets)


def _output(response: httpx.Response, data: bytes, decoded: bool, mode: str, *, lenient: bool
            ) -> tuple[dict[str, Any], str | None]:
    """The step output; ``lenient`` (error answers) falls back to text rather than failing on the body."""
    headers: dict[str, str] = {}
    for name, value in response.headers.multi_items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    ctype = response.headers.get("content-type")
    try:
        body, is_b64, note = parse_body(data, ctype, mode, decoded=decoded)
    except InvalidBody:
        if not lenient:
            raise
        body, is_b64, note = parse_body(data, ctype, "text", decoded=decoded)
    out: dict[str, Any] = {"status": response.status_code, "headers": headers, "body": body}
    if is_b64:
        out["bodyEncoding"] = "base64"
    return out, note


@step_activity("core.http", map_http_exception)
async def http_request(inp: dict[str, Any], ctx: StepContext) -> StepResult:
    """Send one HTTP request (see the module docstring for input, output and errors)."""
    call = build_call(inp, ctx)
    for i, secret in enumerate(call.secrets):
        if len(secret) >= 4:  # derived credentials are redacted like the secrets they came from
            ctx.secrets.setdefault(f"$core.http.{i}", secret)
    limit = int(ctx.limits.get("httpResponseBytes") or DEFAULT_RESPONSE_LIMIT)
    client = pooled_client(timeout=httpx.Timeout(call.timeout), follow_redirects=call.follow,
                           max_redirects=MAX_REDIRECTS, secrets=[*ctx.secrets.values(), *call.secrets])
    async with client, client.stream(call.method, call.url, headers=call.headers, content=call.content) as response:
        status = response.status_code
        where = f"{call.method} {response.request.url.copy_with(username=None, password=None)}"
        failed = status >= 400 and status not in call.ok_statuses
        declared = declared_length(response)
        if not failed and declared is not None and declared > limit:
            raise too_large(where, status, limit, declared)  # refused before reading a byte
        try:
            # An error answer is read up to the limit too: its status matters more than its size.
            data, decoded, truncated = await read_limited(response, limit)
        except InvalidBody as exc:
            raise StepFailure("HTTP_INVALID_RESPONSE", f"{where} returned {status}: {exc}",
                              provider_status=status) from None
    if truncated and not failed:
        raise too_large(where, status, limit, None)  # a Content-Length counts encoded bytes: not shown
    ctype = response.headers.get("content-type")
    try:
        output, note = _output(response, data, decoded, call.response_type, lenient=failed)
    except InvalidBody as exc:
        raise StepFailure("HTTP_INVALID_RESPONSE", f"{where} returned {status}: {exc}",
                          provider_status=status, detail=preview(data, ctype)) from None
    if failed:
        if truncated:
            output["body"], output["bodyTruncated"] = None, True  # a cut JSON or text body would mislead
        raise status_failure(call.method, where.split(" ", 1)[1], response, output, preview(data, ctype))
    warnings = [StepFailure("HTTP_INVALID_RESPONSE", f"{where}: the body {note}; kept as text",
                            severity="warning")] if note else []
    return StepResult(output, warnings=warnings)

"""What a connection may hold, checked when it is saved (the CLI, REST and GraphQL all save through
``connections.split_values``): bounded fields, an API key header that is a plain HTTP field name, credential
values without line breaks, and a token URL that HTTP steps would be allowed to reach."""

from __future__ import annotations

import re
from typing import Any

from flowtide.store.database import StoreError
from flowtide.workflows.limits import CONNECTION_FIELD_CHARS, CONNECTION_MAX_SCOPES

TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 field-name: 1*tchar
# Framing, routing and hop-by-hop fields: an API key here would break or smuggle the request
RESERVED_HEADERS = frozenset({
    "host", "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "te",
    "trailer", "upgrade", "expect", "proxy-authorization", "proxy-authenticate", "content-encoding"})
HEADER_FIELDS = frozenset({"token", "value"})  # sent as (part of) a header value
URL_FIELDS = ("tokenUrl",)
# an origin: scheme://host[:port] and nothing else (no path, user or query)
ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(:[0-9]{1,5})?")


class FieldError(StoreError):
    """A refused connection field; ``field`` names it (the REST problem's path)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def check_fields(values: dict[str, Any]) -> None:
    """Raise FieldError for the first field of ``values`` (strings, scopes a list) a connection may not hold."""
    for field, value in values.items():
        if value is None:
            continue
        limit = CONNECTION_FIELD_CHARS.get(field, CONNECTION_FIELD_CHARS["*"])
        items = value if isinstance(value, list) else [value]
        if field == "scopes" and len(items) > CONNECTION_MAX_SCOPES:
            raise FieldError(field, f"at most {CONNECTION_MAX_SCOPES} scopes")
        for item in items:
            if len(item) > limit:
                raise FieldError(field, f"at most {limit} characters")
            if any(c in item for c in "\r\n\0") and field != "password":
                raise FieldError(field, "must not contain a line break or NUL")
    origins = values.get("origins") or []
    if len(origins) > CONNECTION_MAX_SCOPES:
        raise FieldError("origins", f"at most {CONNECTION_MAX_SCOPES} origins")
    for origin in origins:
        if not ORIGIN.fullmatch(normal_origin(origin)):
            raise FieldError("origins", f"{origin[:80]!r} is not an origin: scheme://host[:port], nothing after "
                             "(https://api.example.com, smtp://mail.example.com:587, postgresql://db.internal)")
    header = values.get("header")
    if header is not None:
        if not TOKEN.match(header):
            raise FieldError("header", f"{header!r} is not an HTTP header name (letters, digits and "
                             "!#$%&'*+-.^_`|~ only; no space, colon or line break)")
        if header.lower() in RESERVED_HEADERS:
            raise FieldError("header", f"'{header}' is a framing or hop-by-hop header; an API key cannot go there")
    for field in URL_FIELDS:
        if values.get(field) is not None:
            _check_url(field, values[field])


def normal_origin(origin: str) -> str:
    """``origin`` as stored and compared: lower case, no trailing slash (checked by ``check_fields``)."""
    return origin.strip().lower().rstrip("/")


def _check_url(field: str, url: str) -> None:
    from flowtide.guards.connect import destination_refusal
    why = destination_refusal(url)
    if why:
        raise FieldError(field, f"{why} (the destination guard of HTTP steps; the worker's FLOWTIDE_HTTP_ALLOW "
                         "lists what an operator allows)")

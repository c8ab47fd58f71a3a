"""Reading and decoding response bodies within a byte limit (``core.http``, ``llm.chat``, OAuth2 token answers).

The body is read from the raw stream and decompressed here, with the limit applied to the *decoded*
bytes as they are produced (``zlib`` ``max_length``): a 60 KB gzip bomb stops at the limit instead of
inflating in memory first. Reading stops one chunk past the limit, whatever the server keeps sending.
"""

from __future__ import annotations

import base64
import codecs
import json
import zlib
from typing import Any

import httpx

from flowtide.workflows.errors import StepFailure

ResponseType = str  # "auto" | "json" | "text" | "binary"
RESPONSE_TYPES = ("auto", "json", "text", "binary")
# Encodings the step asks for and can decode within the limit; anything else stays raw (base64).
ACCEPT_ENCODING = "gzip, deflate"
_TEXT_SUBTYPES = frozenset({"xml", "javascript", "ecmascript", "x-www-form-urlencoded", "x-ndjson", "csv",
                            "yaml", "x-yaml", "graphql", "sql"})


class InvalidBody(Exception):  # noqa: N818 - mapped to HTTP_INVALID_RESPONSE
    """The body cannot be decoded as asked (``responseType: json`` on non-JSON, corrupt gzip)."""


class _Inflater:
    """Streaming gzip/deflate decoder that never produces more than it is allowed to."""

    def __init__(self, encoding: str) -> None:
        self._gzip = encoding in ("gzip", "x-gzip")
        self._first = True
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS if self._gzip else zlib.MAX_WBITS)

    def feed(self, data: bytes, room: int) -> bytes:
        # Asking for room + 1 bytes is enough to know the limit is crossed; the caller stops there.
        try:
            return self._z.decompress(data, room + 1)
        except zlib.error:
            if self._gzip or not self._first:
                raise
            # "deflate" is often sent without the zlib header (raw deflate); retry the first chunk so.
            self._z = zlib.decompressobj(-zlib.MAX_WBITS)
            return self._z.decompress(data, room + 1)
        finally:
            self._first = False


def declared_length(response: httpx.Response) -> int | None:
    """The Content-Length a response declares, if it is a plain number."""
    value = response.headers.get("content-length", "").strip()
    return int(value) if value.isdigit() else None


class _Limited:
    """A body being read: decoded as it arrives, refused past ``limit`` decoded bytes."""

    def __init__(self, response: httpx.Response, limit: int) -> None:
        self.encoding = response.headers.get("content-encoding", "identity").strip().lower() or "identity"
        self.inflater = _Inflater(self.encoding) if self.encoding in ("gzip", "x-gzip", "deflate") else None
        self.limit, self.out = limit, bytearray()

    def add(self, chunk: bytes) -> bool:
        """Take one raw chunk; True once the body is past the limit (stop reading)."""
        try:
            self.out += self.inflater.feed(chunk, self.limit - len(self.out)) if self.inflater else chunk
        except zlib.error as exc:
            raise InvalidBody(f"the {self.encoding} response body is corrupt: {exc}") from exc
        return len(self.out) > self.limit

    def result(self, truncated: bool) -> tuple[bytes, bool, bool]:
        decoded = self.inflater is not None or self.encoding == "identity"
        return bytes(self.out[:self.limit]), decoded, truncated


async def read_limited(response: httpx.Response, limit: int) -> tuple[bytes, bool, bool]:
    """Read and decode the body of a streamed response, stopping once it exceeds ``limit`` decoded bytes.

    Args:
        response: a response from ``client.stream(...)`` whose body has not been read.
        limit: the most bytes the decoded body may have.

    Returns:
        ``(body, decoded, truncated)``: at most ``limit`` bytes; ``decoded`` is False when the
        content-encoding was unknown and the bytes are raw; ``truncated`` when more was left unread.

    Raises:
        InvalidBody: the compressed stream is corrupt.
    """
    body = _Limited(response, limit)
    async for chunk in response.aiter_raw():
        if body.add(chunk):
            return body.result(True)
    return body.result(False)


def read_limited_sync(response: httpx.Response, limit: int) -> tuple[bytes, bool, bool]:
    """``read_limited`` for a response of a synchronous client."""
    body = _Limited(response, limit)
    for chunk in response.iter_raw():
        if body.add(chunk):
            return body.result(True)
    return body.result(False)


def as_read(response: httpx.Response, body: bytes) -> httpx.Response:
    """A response holding ``body`` (read by ``read_limited``, already decoded) for code that reads ``.json()``
    or ``.text``: the same status, headers (without the encoding and length of the bytes on the wire) and
    request."""
    headers = [(k, v) for k, v in response.headers.multi_items()
               if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
    return httpx.Response(response.status_code, headers=headers, content=body, request=response.request)


def too_large(where: str, status: int, limit: int, declared: int | None) -> StepFailure:
    """``HTTP_RESPONSE_TOO_LARGE`` for an answer past ``settings.limits.httpResponseBytes`` (core.http, llm.chat)."""
    size = f"declares {declared} bytes" if declared else "is larger"
    return StepFailure("HTTP_RESPONSE_TOO_LARGE", f"{where} returned {status} with a body that {size}, over the "
                       f"limit of {limit} bytes", provider_status=status, retryable=False,
                       detail="raise settings.limits.httpResponseBytes, or ask the API for less")


def _media(content_type: str) -> tuple[str, str, str | None]:
    """``(type, subtype, charset)`` of a Content-Type header, lower-cased."""
    mime, _, params = content_type.partition(";")
    main, _, sub = mime.strip().lower().partition("/")
    charset = None
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"').lower()
    return main, sub, charset


def _decode_text(data: bytes, charset: str | None, *, strict: bool) -> str:
    name = charset or "utf-8"
    try:
        codecs.lookup(name)
    except LookupError:
        name = "utf-8"
    return data.decode(name, "strict" if strict else "replace")


def parse_body(data: bytes, content_type: str | None, mode: ResponseType, *, decoded: bool = True
               ) -> tuple[Any, bool, str | None]:
    """Turn body bytes into the step output's ``body``.

    Args:
        data: the (decoded) body bytes.
        content_type: the response Content-Type, if any.
        mode: ``auto`` (by content type), ``json``, ``text`` or ``binary``.
        decoded: False when ``data`` is still content-encoded (then it can only be binary).

    Returns:
        ``(body, is_base64, note)``; ``note`` says why an ``auto`` JSON body was kept as text.

    Raises:
        InvalidBody: ``mode`` is ``json`` and the body is not JSON.
    """
    main, sub, charset = _media(content_type or "")
    is_json = sub == "json" or sub.endswith("+json")
    if mode == "binary" or not decoded:
        return base64.b64encode(data).decode("ascii"), True, None
    if mode == "json":
        if not data.strip():
            return None, False, None
        try:
            return json.loads(_decode_text(data, charset, strict=True)), False, None
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidBody(f"the response body is not JSON ({exc})") from exc
    if mode == "text":
        return _decode_text(data, charset, strict=False), False, None
    if is_json and data.strip():
        try:
            return json.loads(_decode_text(data, charset, strict=True)), False, None
        except (ValueError, UnicodeDecodeError) as exc:
            return _decode_text(data, charset, strict=False), False, f"declared JSON but did not parse ({exc})"
    if is_json or main == "text" or sub in _TEXT_SUBTYPES or sub.endswith("+xml") or charset:
        return _decode_text(data, charset, strict=False), False, None
    if not main:  # no Content-Type: text when it is valid UTF-8, else binary
        try:
            return data.decode("utf-8"), False, None
        except UnicodeDecodeError:
            pass
    return base64.b64encode(data).decode("ascii"), True, None


def preview(data: bytes, content_type: str | None, size: int = 2048) -> str:
    """The first ``size`` characters of a body, for an error's ``detail``."""
    charset = _media(content_type or "")[2]
    return _decode_text(data[: size * 4], charset, strict=False)[:size]

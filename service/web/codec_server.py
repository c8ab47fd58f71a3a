"""Temporal's remote codec protocol for the Web UI: ``POST /decode`` and ``POST /encode`` over client.codec."""

# The Web UI (``temporal server start-dev --ui-codec-endpoint URL`` or its Settings > Codec Server) posts
# ``{"payloads": [{"metadata": {...base64...}, "data": "base64"}]}`` from the browser, so the answer needs
# CORS for the UI's origin. It decrypts with ``FLOWTIDE_CODEC_KEY``: serve it on loopback (the default) or
# behind your own authentication, since whoever can reach it can read decrypted payloads.

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payload

from flowtide.client.codec import AesGcmCodec, CodecKeyError, load_key
from flowtide.service.errors import ApiError, error_entry
from flowtide.service.http import json_text, read_limited

DEFAULT_ORIGINS = ("http://127.0.0.1:8233", "http://localhost:8233")
MAX_BODY = 8 * 1024 * 1024
BODY_TIMEOUT_S = 30.0  # the whole body, however slowly it trickles


def _error(status: int, message: str, code: str = "BAD_REQUEST") -> JSONResponse:
    return JSONResponse({"errors": [error_entry(code, message)]}, status_code=status)


async def _payloads(request: Request) -> list[Payload]:
    """The payloads of the request body (protobuf JSON: bytes as base64).

    Raises:
        ApiError: the body is too large, too slow, or not JSON (read as the API reads its bodies).
        ValueError: the body is not ``{"payloads": [...]}`` of payloads.
    """
    body = await read_limited(request, MAX_BODY, BODY_TIMEOUT_S)
    doc = json_text(body.decode("utf-8", "replace"))
    if not isinstance(doc, dict) or not isinstance(doc.get("payloads"), list):
        raise ValueError('expected {"payloads": [...]}')
    return [json_format.ParseDict(p, Payload()) for p in doc["payloads"]]


def _answer(payloads: list[Payload]) -> JSONResponse:
    return JSONResponse({"payloads": [json_format.MessageToDict(p) for p in payloads]})


def make_handler(codec: AesGcmCodec, decode: bool) -> Any:
    """The ``/decode`` or ``/encode`` endpoint over ``codec``."""
    async def handler(request: Request) -> Response:
        try:
            payloads = await _payloads(request)
        except ApiError as err:
            return _error(err.status, f"not a codec request: {err.message}", err.code)
        except (ValueError, json_format.ParseError) as exc:
            return _error(400, f"not a codec request: {exc}")
        try:
            done = await (codec.decode(payloads) if decode else codec.encode(payloads))
        except CodecKeyError as exc:
            return _error(400, str(exc))
        return _answer(done)
    return handler


def codec_app(key_text: str, origins: tuple[str, ...] = DEFAULT_ORIGINS) -> Starlette:
    """The codec server's ASGI app for the key ``key_text`` (base64 of 32 bytes), CORS for ``origins``.

    Raises:
        CodecKeyError: the key is not a valid key.
    """
    codec = AesGcmCodec(load_key(key_text))
    routes = [Route("/decode", make_handler(codec, True), methods=["POST"]),
              Route("/encode", make_handler(codec, False), methods=["POST"])]
    cors = Middleware(CORSMiddleware, allow_origins=list(origins), allow_methods=["POST"], allow_credentials=True,
                      allow_headers=["content-type", "x-namespace", "authorization"])
    return Starlette(routes=routes, middleware=[cors])

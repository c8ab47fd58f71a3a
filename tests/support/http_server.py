"""An HTTP server on 127.0.0.1 for the edge cases the demo service does not cover.

The demo service (``dev.demo_service``) answers the ordinary routes; this one misbehaves at the
protocol level, which needs raw control of the socket::

    GET /endless            200, chunked, never ends (counts bytes sent in ``sent``)
    GET /drip               200, chunked, one byte every 100 ms for 5 s (each read is quick, the whole is not)
    GET /gzip-bomb          200, Content-Encoding gzip, 64 MiB of zeros compressed to 64 KiB
    GET /gzip-corrupt       200, Content-Encoding gzip, not gzip
    GET /deflate-raw        200, Content-Encoding deflate without the zlib header
    GET /bytes?n=N          200 application/octet-stream, N bytes 0..255
    GET /latin1             200 text/plain; charset=iso-8859-1
    GET /badjson            200 application/json that does not parse
    GET /textjson           200 application/json that parses, for responseType text
    ANY /echo?status=N      N (default 200) with the method, headers, query and body received
    GET /loop               302 to itself
    GET /garbage            bytes that are not HTTP
    GET /drop               closes the connection without answering
    GET /reset              headers, part of the body, then a TCP reset
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import struct
import zlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flowtide.dev.loopback import ThreadedServer


class EdgeServer(ThreadedServer):
    """Start/stop like ``DemoService``: ``with EdgeServer() as srv: srv.url``."""

    thread_name = "edge-http"

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0
        # Built once, before any test measures memory (tracemalloc sees every thread).
        self._bomb = gzip.compress(bytes(64 << 20), compresslevel=9)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            if not line:
                return
            method, target, _ = line.decode("latin-1").split(" ", 2)
            headers: dict[str, str] = {}
            while (h := await reader.readline()) not in (b"\r\n", b"\n", b""):
                k, _, v = h.decode("latin-1").partition(":")
                headers[k.strip().lower()] = v.strip()
            length = int(headers.get("content-length") or 0)
            body = await reader.readexactly(length) if length else b""
            await self._route(method, target, headers, body, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away (it is supposed to, past the size limit) or the server stops
        finally:
            writer.close()

    async def _route(self, method: str, target: str, headers: dict[str, str], body: bytes,
                     w: asyncio.StreamWriter) -> None:
        parts = urlsplit(target)
        path, q = parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if path == "/endless":
            w.write(_head(200, {"content-type": "text/plain", "transfer-encoding": "chunked"}))
            chunk = b"y" * 65536
            while True:
                w.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.sent += len(chunk)
                await w.drain()
        elif path == "/drip":
            w.write(_head(200, {"content-type": "text/plain", "transfer-encoding": "chunked"}))
            for _ in range(50):
                w.write(b"1\r\n.\r\n")
                await w.drain()
                await asyncio.sleep(0.1)
            w.write(b"0\r\n\r\n")
        elif path == "/gzip-bomb":
            _send(w, 200, {"content-type": "application/octet-stream", "content-encoding": "gzip"}, self._bomb)
        elif path == "/gzip-corrupt":
            _send(w, 200, {"content-type": "text/plain", "content-encoding": "gzip"}, b"\x1f\x8bnot gzip at all")
        elif path == "/deflate-raw":
            z = zlib.compressobj(wbits=-zlib.MAX_WBITS)
            _send(w, 200, {"content-type": "text/plain", "content-encoding": "deflate"},
                  z.compress(b"raw deflate body") + z.flush())
        elif path == "/bytes":
            blob = bytes(range(256)) * (int(q.get("n", "256")) // 256)
            _send(w, 200, {"content-type": "application/octet-stream"}, blob)
        elif path == "/latin1":
            _send(w, 200, {"content-type": "text/plain; charset=iso-8859-1"}, "café".encode("latin-1"))
        elif path == "/badjson":
            _send(w, 200, {"content-type": "application/json"}, b"{not json")
        elif path == "/textjson":
            _send(w, 200, {"content-type": "application/json"}, b'{"a": 1}')
        elif path == "/echo":
            data: dict[str, Any] = {"method": method, "headers": headers, "query": q,
                                    "body": body.decode("utf-8", "replace")}
            _send(w, int(q.get("status", "200")), {"content-type": "application/json"}, json.dumps(data).encode())
        elif path == "/loop":
            _send(w, 302, {"location": "/loop"}, b"")
        elif path == "/garbage":
            w.write(b"SPEAKING SOMETHING ELSE\r\n\r\n")
        elif path == "/drop":
            return
        elif path == "/reset":
            w.write(_head(200, {"content-type": "text/plain", "content-length": "100000"}) + b"z" * 1000)
            await w.drain()
            sock = w.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
        else:
            _send(w, 404, {"content-type": "text/plain"}, b"no such route")
        await w.drain()


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} Status", "connection: close", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _send(w: asyncio.StreamWriter, status: int, headers: dict[str, str], body: bytes) -> None:
    w.write(_head(status, {**headers, "content-length": str(len(body))}) + body)

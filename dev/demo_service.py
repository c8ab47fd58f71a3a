"""A small, real HTTP service on 127.0.0.1 that fails on purpose: the demo's and the tests' peer.

Routes (every request is counted per path in ``calls``)::

    GET  /ok                      200 {"ok": true}
    GET  /customers/{id}          200 customer JSON; id 404 -> 404; id 500 -> 500
    ANY  /status/{code}           that status with a JSON body
    GET  /ratelimit?retry_after=S 429 (with Retry-After when given)
    ANY  /flaky?fail=N&key=K      fails with 500 (or ?status=) the first N calls for key K, then 200
    GET  /slow?ms=N               answers after N ms
    GET  /limited?max=M&ms=N      429 while M calls are in flight, else 200 after N ms (50); counts in /calls
    GET  /large?kb=N              N KB of text
    GET  /redirect?to=URL         302 to URL
    ANY  /echo                    the method, headers, query and body it received
    POST /reset                   clears counters (and plans)
    GET  /calls                   the counters

The peers of the seed recipes in ``examples/seeds/`` (run them with ``--input '{"baseUrl": ...}'``)::

    GET  /data, /query, /slow-endpoint; PUT /cache; POST /alerts      200 {"ok": true, ...}
    GET  /items/{id}, /extra-data/{id}  like /customers/{id}
    GET  /files/{name}                  200 text "contents of {name}"
    POST /charge                        a payment API: 401 without a bearer token, 400 when the amount is not
                                        positive, 402 for customer "declined", else 200 {chargeId, amount, ...};
                                        the same idempotencyKey always gets the same chargeId
    GET  /api/lookup/{id}               a partner API: an id that is an HTTP status (400, 429, 503, ...) gets
                                        that status, any other id 200 {"id", "name"}

``plan(path, *answers)`` makes the next requests to ``path`` answer the given statuses in order (an answer
may be ``(status, delay_ms)``), then the route answers as usual again; tests use it to script failures.

``python -m flowtide.dev.demo_service [--port 8080]`` serves it in the foreground.

It runs in its own thread with its own event loop, so a blocking test or CLI cannot starve it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flowtide.dev.loopback import ThreadedServer


class DemoService(ThreadedServer):
    """Start with ``start()`` (returns the base URL), stop with ``stop()``; usable as a context manager."""

    thread_name = "demo-service"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.calls: Counter[str] = Counter()
        self.bodies: list[dict[str, Any]] = []
        self._flaky: Counter[str] = Counter()
        self._plans: dict[str, list[tuple[int, int]]] = {}
        self._charges: dict[str, str] = {}
        self._charge_count = 0
        self._lock = threading.Lock()
        self._in_flight: Counter[str] = Counter()

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self._flaky.clear()
            self.bodies.clear()
            self._plans.clear()
            self._charges.clear()

    def plan(self, path: str, *answers: int | tuple[int, int]) -> None:
        """The next ``len(answers)`` requests to ``path`` get these statuses (``(status, delay_ms)``: after a
        delay) with a JSON body, in order; later ones get the route's usual answer. Replaces an earlier plan."""
        with self._lock:
            self._plans[path] = [(a, 0) if isinstance(a, int) else (int(a[0]), int(a[1])) for a in answers]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                status, headers, body = await self._route(*request)
                keep = request[2].get("connection", "").lower() != "close"
                _write_response(writer, status, headers, body, keep)
                await writer.drain()
                if not keep:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            # CancelledError: the service is stopping; ending quietly keeps asyncio from logging it
            pass
        finally:
            writer.close()

    async def _route(self, method: str, target: str, headers: dict[str, str], body: bytes
                     ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(target)
        path, q = parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self._lock:
            self.calls[path] += 1
            self.bodies.append({"method": method, "path": path, "headers": headers,
                                "body": body.decode("utf-8", "replace")})
        with self._lock:
            planned = self._plans[path].pop(0) if self._plans.get(path) else None
        if planned is not None:
            status, delay_ms = planned
            if delay_ms:
                await asyncio.sleep(delay_ms / 1000)
            return _json(status, {"status": status, "message": f"planned answer {status}", "path": path})
        seg = [s for s in path.split("/") if s]
        if path == "/ok":
            return _json(200, {"ok": True})
        if path == "/calls":
            return _json(200, dict(self.calls))
        if path == "/reset":
            self.reset()
            return _json(200, {"reset": True})
        if len(seg) == 2 and seg[0] in ("customers", "items", "extra-data"):
            if seg[1] in ("404", "missing"):
                return _json(404, {"message": "Customer not found", "id": seg[1]})
            if seg[1] == "500":
                return _json(500, {"message": "internal error"})
            return _json(200, {"id": seg[1], "name": f"Customer {seg[1]}", "email": f"c{seg[1]}@example.test"})
        if len(seg) == 2 and seg[0] == "status" and seg[1].isdigit():
            return _json(int(seg[1]), {"status": int(seg[1]), "message": f"status {seg[1]} on purpose"})
        if path == "/ratelimit":
            extra = {"retry-after": q["retry_after"]} if "retry_after" in q else {}
            return _json(429, {"message": "slow down"}, extra)
        if path == "/flaky":
            key = q.get("key", "default")
            with self._lock:
                self._flaky[key] += 1
                n = self._flaky[key]
            if n <= int(q.get("fail", "1")):
                return _json(int(q.get("status", "500")), {"message": f"failure {n} on purpose", "call": n})
            return _json(200, {"ok": True, "call": n})
        if path == "/limited":
            return await self._limited(q)
        if path == "/slow":
            await asyncio.sleep(int(q.get("ms", "1000")) / 1000)
            return _json(200, {"ok": True, "sleptMs": int(q.get("ms", "1000"))})
        if path == "/large":
            kb = int(q.get("kb", "1024"))
            return 200, {"content-type": "text/plain"}, b"x" * (kb * 1024)
        if path == "/redirect":
            return 302, {"location": q.get("to", "/ok")}, b""
        if path == "/echo":
            text = body.decode("utf-8", "replace")
            return _json(200, {"method": method, "headers": headers, "query": q, "body": text})
        recipe = self._recipe_route(method, path, seg, headers, body)
        if recipe is not None:
            return recipe
        return _json(404, {"message": f"no route {path}"})

    async def _limited(self, q: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """A rate limit by concurrency: more than ``max`` calls at once get 429 (counted as ``/limited:429``)."""
        key = q.get("key", "default")
        with self._lock:
            if self._in_flight[key] >= int(q.get("max", "5")):
                self.calls["/limited:429"] += 1
                return _json(429, {"message": "too many concurrent calls"})
            self._in_flight[key] += 1
        try:
            await asyncio.sleep(int(q.get("ms", "50")) / 1000)
        finally:
            with self._lock:
                self._in_flight[key] -= 1
        return _json(200, {"ok": True})

    def _recipe_route(self, method: str, path: str, seg: list[str], headers: dict[str, str], body: bytes
                      ) -> tuple[int, dict[str, str], bytes] | None:
        """The seed recipes' peers (see the module docstring)."""
        if path in ("/data", "/query", "/slow-endpoint", "/cache", "/alerts"):
            text = body.decode("utf-8", "replace")
            return _json(200, {"ok": True, "path": path, "method": method, **({"received": text} if text else {})})
        if len(seg) == 2 and seg[0] == "files":
            return 200, {"content-type": "text/plain"}, f"contents of {seg[1]}".encode()
        if len(seg) == 3 and seg[:2] == ["api", "lookup"]:
            if seg[2].isdigit() and 400 <= int(seg[2]) <= 599:
                return _json(int(seg[2]), {"message": f"partner answered {seg[2]}"})
            return _json(200, {"id": seg[2], "name": f"Partner record {seg[2]}"})
        if path == "/charge" and method == "POST":
            return self._charge(headers, body)
        return None

    def _charge(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        if not headers.get("authorization", "").startswith("Bearer ") or headers["authorization"] == "Bearer ":
            return _json(401, {"message": "missing API key"})
        try:
            req = json.loads(body or b"{}")
            amount = float(req.get("amount") or 0)
        except (ValueError, TypeError, AttributeError):
            return _json(400, {"message": "the body is not a JSON charge request"})
        if amount <= 0:
            return _json(400, {"message": "amount must be positive"})
        if req.get("customerId") == "declined":
            return _json(402, {"message": "card declined"})
        key = str(req.get("idempotencyKey") or "")
        with self._lock:
            charge = self._charges.get(key) if key else None
            replay = charge is not None
            if charge is None:
                self._charge_count += 1
                charge = f"ch_{self._charge_count}"
                if key:
                    self._charges[key] = charge
        return _json(200, {"chargeId": charge, "amount": amount, "customerId": req.get("customerId"),
                           "replayed": replay})


def _json(status: int, data: Any, extra: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    return status, {"content-type": "application/json", **(extra or {})}, json.dumps(data).encode()


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes] | None:
    line = await reader.readline()
    if not line:
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        h = await reader.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0") or 0)
    body = await reader.readexactly(length) if length else b""
    return method, target, headers, body


_REASONS = {200: "OK", 302: "Found", 400: "Bad Request", 401: "Unauthorized", 402: "Payment Required",
            404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


def _write_response(writer: asyncio.StreamWriter, status: int, headers: dict[str, str], body: bytes,
                    keep: bool) -> None:
    head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", f"content-length: {len(body)}",
            f"connection: {'keep-alive' if keep else 'close'}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)


def main(argv: list[str] | None = None) -> None:
    """Serve in the foreground (``python -m flowtide.dev.demo_service --port 8080``) until interrupted."""
    import argparse
    import time

    parser = argparse.ArgumentParser(description="The local service the demo and the seed recipes call.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    with DemoService(args.host, args.port) as service:
        print(f"serving on {service.url} (Ctrl-C stops)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()

"""A real OAuth2 token endpoint and an API that wants its tokens, on one threaded loopback server.

``POST /token``: the refresh-token and client-credentials grants, client authenticated with HTTP Basic
(Authlib's default) or in the form; ``invalid_grant`` once the refresh token is refused. ``GET /api``:
200 with the caller's Authorization header echoed (to test redaction) for a live token, else 401.
Counters say how many token requests of each grant arrived.
"""

from __future__ import annotations

import base64
import gzip
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


class OAuthWorld:
    """The server's state; the test changes it between runs (``expires_in``, ``refuse``, ``revoke``)."""

    def __init__(self, client_id: str = "flowtide", client_secret: str | None = None,
                 refresh_token: str | None = None) -> None:
        self.client_id = client_id
        self.client_secret = client_secret or "cs-" + secrets.token_hex(12)
        self.refresh_token = refresh_token or "rt-" + secrets.token_hex(12)
        self.expires_in = 3600
        self.delay_s = 0.0  # a slow token endpoint makes concurrent steps overlap
        self.refused = False
        self.bomb = False  # answer every token request with 40 MB of gzip-compressed spaces (40 KB on the wire)
        self.api_delay_s = 0.0  # a slow API shows how many steps call it at once (max_in_flight)
        self.in_flight = self.max_in_flight = 0
        self.tokens: dict[str, float] = {}  # access token -> expiry (monotonic)
        self.issued: list[str] = []
        self.grants: list[str] = []
        self.forms: list[dict[str, str]] = []  # every token request's form (grant, scope, refresh token)
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def revoke(self) -> None:
        """Every access token issued so far stops working (the API answers 401)."""
        with self.lock:
            self.tokens.clear()

    def token(self, form: dict[str, str], basic: tuple[str, str] | None) -> tuple[int, dict[str, Any]]:
        cid, secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        if (cid, secret) != (self.client_id, self.client_secret):
            return 401, {"error": "invalid_client"}
        grant = form.get("grant_type", "")
        with self.lock:
            self.grants.append(grant)
            self.forms.append(form)
        time.sleep(self.delay_s)
        if grant == "refresh_token" and (self.refused or form.get("refresh_token") != self.refresh_token):
            return 400, {"error": "invalid_grant", "error_description": "the refresh token was revoked"}
        if grant not in ("refresh_token", "client_credentials"):
            return 400, {"error": "unsupported_grant_type"}
        access = "at-" + secrets.token_hex(16)
        with self.lock:
            self.tokens[access] = time.monotonic() + self.expires_in
            self.issued.append(access)
        return 200, {"access_token": access, "token_type": "Bearer", "expires_in": self.expires_in,
                     "scope": form.get("scope", "")}

    def live(self, authorization: str) -> bool:
        token = authorization.removeprefix("Bearer ").strip()
        with self.lock:
            return self.tokens.get(token, 0) > time.monotonic()

    def __enter__(self) -> OAuthWorld:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(world: OAuthWorld) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            if world.bomb:
                data = gzip.compress(b" " * 40_000_000)
                self.send_response(200)
                for k, v in (("Content-Type", "application/json"), ("Content-Encoding", "gzip"),
                             ("Content-Length", str(len(data)))):
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
                return
            form = {k: v[0] for k, v in parse_qs(raw).items()}
            basic = None
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
                basic = (user, pw)
            self._answer(*world.token(form, basic))

        def do_GET(self) -> None:
            auth = self.headers.get("Authorization", "")
            with world.lock:
                world.in_flight += 1
                world.max_in_flight = max(world.max_in_flight, world.in_flight)
            time.sleep(world.api_delay_s)
            with world.lock:
                world.in_flight -= 1
            if not world.live(auth):
                self._answer(401, {"error": "invalid_token", "sent": auth})
                return
            self._answer(200, {"ok": True, "authorization": auth})

    return Handler


def tokens_in_a_process(database_url: str, secret_key: str, name: str, steps: int) -> list[str]:
    """What ``steps`` concurrent steps of one worker process get from ``access_token`` (run in a child process)."""
    import asyncio
    import os

    os.environ["FLOWTIDE_SECRET_KEY"] = secret_key
    from flowtide.activities.connection.oauth import access_token
    from flowtide.store.connections import Connections
    from flowtide.store.database import Store
    conns = Connections(Store(database_url))

    async def one() -> str:
        c = conns.get(name)
        assert c is not None
        return await access_token(conns, c)

    async def all_steps() -> list[str]:
        return list(await asyncio.gather(*(one() for _ in range(steps))))

    return asyncio.run(all_steps())

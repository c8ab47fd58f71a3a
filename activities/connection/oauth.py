"""OAuth2 access tokens of connections: refreshed before expiry and after a 401, one refresh at a time.

One refresh at a time per connection: an ``asyncio.Lock`` per connection within a worker process (so that
one task, not twenty threads, waits for the others), then across processes an ``fcntl`` lock file beside
the SQLite database, or on PostgreSQL the connection's row locked with ``SELECT ... FOR UPDATE`` (which
also covers several machines). Whoever gets the lock re-reads the row first: a token that another step
refreshed meanwhile is used as it is. For the token request (refresh-token or client-credentials grant)
Authlib's protocol helpers build the form and read the answer and httpx sends it (Authlib's own httpx
client is deprecated in favour of an ``httpx2`` package that this project does not use).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import time
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import structlog
from authlib.oauth2.rfc6749.parameters import prepare_token_request
from authlib.oauth2.rfc6749.wrappers import OAuth2Token

from flowtide.activities._http_body import ACCEPT_ENCODING, InvalidBody, as_read, read_limited_sync
from flowtide.guards.connect import guarded_sync_client
from flowtide.guards.network import DestinationBlocked
from flowtide.store.connections import Conn, Connections
from flowtide.workflows.errors import StepFailure

EARLY_S = 60.0  # refresh at most this long before the expiry: a token must not expire in flight
EARLY_FRACTION = 0.1  # ... and at most this share of the token's lifetime (a 60 s token is not always stale)
EARLY_FLOOR_S = 2.0  # ... but at least this long
# The lifetime (seconds) the server gave each token this process obtained, by a digest of the token. Kept in
# memory: the connection row has no column for it (a token another process obtained gets the full margin
# once; the next refresh is then known here too).
_lifetimes: dict[str, float] = {}
TOKEN_TIMEOUT_S = 30.0
TOKEN_ANSWER_MAX_BYTES = 64 * 1024
LOCK_WAIT_S = 120.0
TRANSIENT = frozenset({"temporarily_unavailable", "server_error", "slow_down"})  # other OAuth errors: refused
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = weakref.WeakKeyDictionary()


def early_margin(lifetime: Any) -> float:
    """How long before its expiry a token of ``lifetime`` seconds is refreshed: min(60 s, 10 %), at least 2 s.

    Unknown lifetimes (tokens stored before the lifetime was kept) get the full 60 s.
    """
    if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
        return EARLY_S
    return max(EARLY_FLOOR_S, min(EARLY_S, EARLY_FRACTION * float(lifetime)))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def _remember_lifetime(token: str, lifetime: Any) -> None:
    if len(_lifetimes) > 10_000:  # bounded: old tokens are long expired
        _lifetimes.clear()
    if isinstance(lifetime, int | float) and not isinstance(lifetime, bool):
        _lifetimes[_digest(token)] = float(lifetime)


def valid_token(c: Conn, stale: str | None = None) -> str | None:
    """The stored access token when it is not ``stale`` (refused by the API) and not about to expire."""
    token = c.secret.get("accessToken")
    if not token or token == stale:
        return None
    margin = timedelta(seconds=early_margin(_lifetimes.get(_digest(str(token)))))
    if c.expires_at is not None and c.expires_at - margin <= datetime.now(UTC):
        return None
    return str(token)


def reconnect_hint(c: Conn) -> str:
    """How to give ``c`` a new token: a project's own connection through its project, the operator's by name."""
    if c.project:
        return (f"PUT /v1/connections/{c.name} with the project's admin key, or flowtide connections reconnect "
                f"{c.name} --project {c.project} ...")
    return f"flowtide connections reconnect {c.name} ..."


def reauthorization(c: Conn) -> StepFailure:
    """The step failure of a connection whose refresh was refused."""
    return StepFailure("AUTH_REAUTHORIZATION_REQUIRED",
                       f"connection '{c.name}' needs reauthorization: {c.reason or 'its token was refused'} "
                       f"({reconnect_hint(c)}, then flowtide rerun RUN --from-failed)",
                       provider_status=401, retryable=False)


async def access_token(conns: Connections, c: Conn, stale: str | None = None) -> str:
    """A usable access token for the oauth2 connection ``c``, refreshing it when needed (see module doc).

    Raises:
        StepFailure: ``AUTH_REAUTHORIZATION_REQUIRED`` when the refresh is refused (the connection is then
            in state ``error``), ``HTTP_*`` when the token endpoint cannot be reached or fails.
    """
    if c.state == "error":
        raise reauthorization(c)
    token = valid_token(c, stale)
    if token:
        return token
    locks = _locks.setdefault(asyncio.get_running_loop(), {})
    async with locks.setdefault(f"{c.project}/{c.name}", asyncio.Lock()):  # one per owned row (project, name)
        token, refused = await asyncio.to_thread(_refresh_locked, conns, c.name, stale)
    if refused is not None:
        _alert(refused)
        raise reauthorization(refused)
    c.secret["accessToken"] = token
    return str(token)


def _alert(c: Conn) -> None:
    """The reauthorization alert: one structured log event (no credential in it) for whoever watches logs."""
    # A logger of the configuration in force now (a cached one may hold a stream closed since), and a
    # broken log sink must not turn the step's clear failure into another one.
    with contextlib.suppress(ValueError, OSError):
        structlog.get_logger("flowtide.connections").warning(
            "connection.reauthorization_required", connection=c.name, reason=c.reason,
            at=datetime.now(UTC).isoformat())


def _refresh_locked(conns: Connections, name: str, stale: str | None) -> tuple[str, Conn | None]:
    """``(token, None)``, or ``("", conn)`` when the refresh was refused (then the row says why)."""
    with _file_lock(conns, name), conns.store.engine.begin() as db:
        c = conns.get(name, conn=db, for_update=True)
        if c is None:
            raise StepFailure("AUTH_MISSING", f"No connection named '{name}' is attached to this step "
                              "(it was removed)", retryable=False)
        if c.state == "error":
            return "", c
        token = valid_token(c, stale)
        if token:
            return token, None  # another step refreshed it while we waited
        try:
            answer = _grant(c)
        except TokenRefused as exc:
            if exc.error in TRANSIENT:
                raise StepFailure("HTTP_SERVER_ERROR", f"the token endpoint of connection '{name}' answered "
                                  f"{exc.error}", provider_status=503) from None
            said = f"{exc.error} ({exc.description})" if exc.description else str(exc.error)
            for value in c.secret_values():  # the server's words could echo a credential: never stored
                said = said.replace(value, "***")
            c.state, c.reason = "error", f"token refresh refused: {said}"
            conns.mark_error(name, c.reason, conn=db)
            return "", c
        c.secret["accessToken"] = str(answer["access_token"])
        if answer.get("refresh_token"):
            c.secret["refreshToken"] = str(answer["refresh_token"])  # the server rotates it
        expires = answer.get("expires_at")
        _remember_lifetime(c.secret["accessToken"], answer.get("expires_in"))
        conns.save_token(db, c, datetime.fromtimestamp(float(expires), UTC) if expires else None)
        return c.secret["accessToken"], None


class TokenRefused(Exception):  # noqa: N818 - what the authorization server said, not a bug
    """The token endpoint answered an OAuth2 error (``invalid_grant``, ``invalid_client``, ...)."""

    def __init__(self, error: str, description: str | None) -> None:
        super().__init__(error)
        self.error, self.description = error, description


def _grant(c: Conn) -> dict[str, Any]:
    """One token request: the refresh-token grant when there is a refresh token, else client credentials.

    Authlib builds the form and reads the answer (``expires_at`` from ``expires_in``); httpx sends it, with
    the client authenticated by HTTP Basic (RFC 6749 2.3.1: both parts form-encoded first).
    """
    scope = " ".join(c.config.get("scopes") or []) or None
    if c.secret.get("refreshToken"):
        body = prepare_token_request("refresh_token", refresh_token=c.secret["refreshToken"], scope=scope)
    else:
        body = prepare_token_request("client_credentials", scope=scope)
    auth = (quote(str(c.config["clientId"]), safe=""), quote(str(c.secret["clientSecret"]), safe=""))
    where = f"the token endpoint of connection '{c.name}'"
    try:
        # Through the network guard, checked now (not only when the connection was saved), no redirects.
        with guarded_sync_client(TOKEN_TIMEOUT_S) as client, client.stream(
                "POST", str(c.config["tokenUrl"]), content=body, auth=auth,
                headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json",
                         "Accept-Encoding": ACCEPT_ENCODING}) as streamed:
            # a token answer is a few hundred bytes: a larger one (or a gzip bomb) is never held whole
            raw, _, truncated = read_limited_sync(streamed, TOKEN_ANSWER_MAX_BYTES)
        response = as_read(streamed, raw)
    except InvalidBody as exc:
        raise StepFailure("HTTP_SERVER_ERROR", f"{where} answered a body that cannot be read: {exc}") from None
    except httpx.TimeoutException:
        raise StepFailure("HTTP_TIMEOUT", f"{where} timed out") from None
    except httpx.HTTPError as exc:
        raise StepFailure("HTTP_CONNECTION_FAILED", f"{where} cannot be reached: {type(exc).__name__}") from None
    if response.is_redirect:
        raise DestinationBlocked(f"{where} answered {response.status_code} (a redirect to "
                                 f"{response.headers.get('location', '?')[:200]!r}): token requests are never "
                                 "redirected; set the connection's tokenUrl to the final address",
                                 host=response.url.host)
    if truncated:
        raise StepFailure("HTTP_RESPONSE_TOO_LARGE", f"{where} answered {response.status_code} with more than "
                          f"{TOKEN_ANSWER_MAX_BYTES} bytes: not a token answer", provider_status=response.status_code,
                          retryable=False)
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code >= 500 or not isinstance(data, dict):
        raise StepFailure("HTTP_SERVER_ERROR", f"{where} answered {response.status_code} without a token",
                          provider_status=response.status_code)
    if "error" in data or "access_token" not in data:
        raise TokenRefused(str(data.get("error") or "no access_token"), data.get("error_description"))
    return dict(OAuth2Token.from_dict(data))


@contextlib.contextmanager
def _file_lock(conns: Connections, name: str) -> Iterator[None]:
    """An exclusive lock file per connection beside a SQLite database (PostgreSQL locks the row instead)."""
    db = conns.store.engine.url.database
    if conns.store.engine.dialect.name != "sqlite" or not db or db == ":memory:":
        yield
        return
    folder = Path(db).resolve().parent / ".connection-locks"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (hashlib.sha256(name.encode()).hexdigest()[:24] + ".lock")
    with open(path, "a+") as fh:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StepFailure("HTTP_TIMEOUT", f"waited {LOCK_WAIT_S:g}s for another refresh of "
                                      f"connection '{name}'") from None
                time.sleep(0.02)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)

"""Step-level ``connection: NAME``: the boundary reads the connection at the moment of use and applies it.

The workflow hands the activity only the connection's name; the credential values are read here from the
service database (``FLOWTIDE_DATABASE_URL``, opened with ``FLOWTIDE_SECRET_KEY``), put into the step's input
(an HTTP header, the LLM API key, SMTP login, the database URL's user and password) and registered with the
boundary as secrets, so every echo of them is redacted. An oauth2 connection's token is refreshed when it
is about to expire and once after a 401, then the request is sent once more.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from flowtide.workflows.errors import StepFailure

if TYPE_CHECKING:
    from flowtide.activities._step import StepContext, StepImpl, StepResult
    from flowtide.store.connections import Conn, Connections

@functools.lru_cache(maxsize=4)
def _connections(url: str | None) -> Connections:
    from flowtide.store.connections import Connections
    from flowtide.store.database import Store
    return Connections(Store(url))  # one engine (and pool) per database and worker process


def _load(conns: Connections, name: str) -> Conn:
    from sqlalchemy.exc import DBAPIError

    from flowtide.store.secretbox import SecretKeyError
    try:
        # a run uses its own project's connection of the name, else the database-wide one (a run without a
        # project: only the database-wide ones), never another project's
        c = conns.get(name)
    except SecretKeyError as exc:
        raise StepFailure("AUTH_MISSING", f"connection '{name}' cannot be read on this worker: {exc}",
                          retryable=False) from None
    except DBAPIError as exc:
        if "connections" not in str(exc.orig):
            raise  # the database is unreachable: the family's mapper decides (a retry may help)
        raise StepFailure("AUTH_MISSING", f"connection '{name}' cannot be read: the service database has no "
                          "connections table (run any flowtide admin command once to migrate it)",
                          retryable=False) from None
    if c is None:
        raise StepFailure("AUTH_MISSING", f"No connection named '{name}' is attached to this step "
                          f"(flowtide connections add {name} --kind ...)", retryable=False)
    return c


def _mismatch(c: Conn, kind: str, wants: str) -> StepFailure:
    return StepFailure("VALIDATION_ERROR", f"connection '{c.name}' is a {c.kind} connection: a {kind} step "
                       f"takes {wants}", retryable=False)


def _basic(c: Conn) -> str:
    return base64.b64encode(f"{c.config['username']}:{c.secret['password']}".encode()).decode("ascii")


def auth_headers(c: Conn, token: str | None) -> dict[str, str]:
    """The HTTP header(s) that carry connection ``c`` (``token``: an oauth2 connection's access token)."""
    if c.kind == "api-key":
        return {str(c.config["header"]): str(c.secret["value"])}
    if c.kind == "basic":
        return {"Authorization": f"Basic {_basic(c)}"}
    return {"Authorization": f"Bearer {token or c.secret['token']}"}


def _http(c: Conn, token: str | None, inp: dict[str, Any]) -> dict[str, Any]:
    headers = {k: v for k, v in dict(inp.get("headers") or {}).items() if k.lower() != "authorization"}
    out = {k: v for k, v in inp.items() if k != "auth"}  # the connection replaces any auth of the input
    out["headers"] = {**headers, **auth_headers(c, token)}
    return out


def _llm(c: Conn, token: str | None, inp: dict[str, Any]) -> dict[str, Any]:
    if c.kind == "basic":
        raise _mismatch(c, "llm.chat", "a bearer, api-key or oauth2 connection")
    if c.kind == "api-key":
        return _http(c, token, inp)  # llm.chat sends input.headers as they are
    return dict(inp, apiKey=token or c.secret["token"])


def _email(c: Conn, token: str | None, inp: dict[str, Any]) -> dict[str, Any]:
    if c.kind != "basic":
        raise _mismatch(c, "email.send", "a basic connection (the SMTP username and password)")
    return dict(inp, username=c.config["username"], password=c.secret["password"])


_WHERE_AND_WHO = frozenset({"host", "hostaddr", "port", "user", "password", "service", "passfile"})


def _datastore(c: Conn, token: str | None, inp: dict[str, Any]) -> dict[str, Any]:
    url = str(inp.get("connection") or "")
    if c.kind != "basic" or not url.startswith(("postgresql://", "postgres://")):
        raise _mismatch(c, "datastore.query", "a basic connection and a postgresql:// input.connection")
    parts = urlsplit(url)
    # libpq lets the query override the URL's host and port (the last value wins): the origin checked is the
    # URL's, so a query naming them would send the connection's password elsewhere
    moved = sorted({k.lower() for k, _ in parse_qsl(parts.query, keep_blank_values=True)} & _WHERE_AND_WHO)
    if moved:
        raise StepFailure("VALIDATION_ERROR", f"connection '{c.name}': input.connection may not set "
                          f"{', '.join(moved)} in its query (the host, port and login come from the URL and the "
                          "connection)", retryable=False)
    login = f"{quote(c.config['username'], safe='')}:{quote(c.secret['password'], safe='')}"
    netloc = login + "@" + parts.netloc.rpartition("@")[2]
    return dict(inp, connection=urlunsplit(parts._replace(netloc=netloc)))


_APPLY = {"core.http": _http, "llm.chat": _llm, "email.send": _email, "datastore.query": _datastore}
DEFAULT_PORTS = {"http": 80, "https": 443, "smtp": 25, "postgresql": 5432, "postgres": 5432}


def destination(kind: str, inp: dict[str, Any]) -> str:
    """Where a step of ``kind`` sends its request: ``scheme://host:port`` (what a connection's origins list)."""
    if kind == "email.send":
        return f"smtp://{str(inp.get('host') or '').lower()}:{inp.get('port') or 25}"
    raw = str(inp.get("url") if kind == "core.http" else inp.get("connection") if kind == "datastore.query"
              else inp.get("baseUrl") or os.environ.get("FLOWTIDE_LLM_BASE_URL", ""))
    try:
        parts = urlsplit(raw)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower(), 0)
    except ValueError:
        return ""
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{port}"


def check_origin(c: Conn, kind: str, inp: dict[str, Any], project: str | None) -> None:
    """A connection goes only where it may: to one of its origins; without any, only for its owner's runs (an
    operator's connection that a project uses must list its origins, or a project could send it anywhere)."""
    where = destination(kind, inp)
    origins = c.config.get("origins") or []
    if origins:
        allowed = {destination("core.http", {"url": o}) if "://" in o else o for o in origins}
        if where not in allowed:
            raise StepFailure("VALIDATION_ERROR", f"connection '{c.name}' may be used only at {', '.join(origins)}, "
                              f"not at {where or 'this destination'}", retryable=False)
    elif project and not c.project:
        raise StepFailure("VALIDATION_ERROR", f"connection '{c.name}' is the operator's and lists no origins, so no "
                          "project may use it: the operator adds them (flowtide connections reconnect "
                          f"{c.name} --origin https://api.example.com ...)", retryable=False)


def _remember(ctx: StepContext, c: Conn, token: str | None) -> None:
    values = c.secret_values() + ([token] if token else [])
    if c.kind == "basic":
        values.append(_basic(c))
    for i, value in enumerate(values):
        ctx.secrets[f"$connection.{c.name}.{i}"] = value


def with_connection(impl: StepImpl, name: str, project: str | None = None) -> StepImpl:
    """``impl`` with the connection ``name`` applied to its input (see the module docstring)."""

    async def run(inp: dict[str, Any], ctx: StepContext) -> StepResult:
        from flowtide.activities.connection.oauth import access_token
        conns = _connections_of(project)  # refreshes and error states then touch the row this run uses
        c = await asyncio.to_thread(_load, conns, name)
        _remember(ctx, c, None)
        apply = _APPLY.get(ctx.step_type)
        if apply is None:
            raise StepFailure("VALIDATION_ERROR", f"a {ctx.step_type} step takes no connection", retryable=False)
        check_origin(c, ctx.step_type, inp, project)
        token = await access_token(conns, c) if c.kind == "oauth2" else None
        _remember(ctx, c, token)
        try:
            return await impl(apply(c, token, inp), ctx)
        except StepFailure as failure:
            if c.kind != "oauth2" or failure.provider_status != 401:
                raise
        ctx.log(f"the API refused connection '{name}''s access token (401): refreshed it, sending once more")
        token = await access_token(conns, c, stale=token)
        _remember(ctx, c, token)
        return await impl(apply(c, token, inp), ctx)

    return run


def _connections_of(project: str | None) -> Connections:
    from flowtide.store.connections import DATABASE_WIDE, Connections
    shared = _connections(os.environ.get("FLOWTIDE_DATABASE_URL") or None)
    return Connections(shared.store, project or DATABASE_WIDE)

"""``/v1/connections``: connections over REST (role ``admin``); credential values are write-only.

A project's admin manages its project's connections and sees (and its runs use) the database-wide ones the
operator added with the CLI, but never changes or removes those: a PUT of such a name creates the project's
own connection of that name (which shadows the database-wide one for the project's runs), a DELETE answers
404 as for a name that does not exist. Another project's connections are never seen: 404, as if absent.
Answers carry settings and state, never a secret.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flowtide.service.auth import authenticate
from flowtide.service.errors import ApiError
from flowtide.service.http import endpoint, object_body, ok, parse_body, read_body
from flowtide.store.connection_checks import FieldError
from flowtide.store.connection_kinds import FIELDS
from flowtide.store.connections import Connections
from flowtide.store.database import StoreError
from flowtide.store.secretbox import SecretKeyError

_KEYS = frozenset(k for req, opt in FIELDS.values() for k in req + opt)


async def _begin(request: Request) -> tuple[Connections, str]:
    svc = request.app.state.svc
    who = await authenticate(request, svc.store, svc.limiter, "admin")
    return Connections(svc.store), who.project


async def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    import asyncio
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except SecretKeyError as exc:
        raise ApiError("INTERNAL", f"the service cannot seal connections: {exc}") from None
    except StoreError as exc:
        path = f"$.{exc.field}" if isinstance(exc, FieldError) else "$"
        raise ApiError("INPUT_INVALID", str(exc), problems=[{"path": path, "message": str(exc)}]) from None


async def _values(request: Request) -> tuple[str | None, dict[str, Any]]:
    body = object_body(parse_body(await read_body(request, request.app.state.svc.max_body), request))
    kind = body.pop("kind", None)
    body.pop("name", None)
    unknown = sorted(set(body) - _KEYS)
    if unknown or (kind is not None and not isinstance(kind, str)):
        raise ApiError("INPUT_INVALID", f"unknown field(s): {', '.join(unknown) or 'kind'}",
                       problems=[{"path": f"$.{k}", "message": "unknown field"} for k in unknown])
    return kind, body


def _absent(name: str) -> ApiError:
    """The one answer for a name the caller may not act on: absent, another project's, or database-wide."""
    return ApiError("NOT_FOUND", f"no connection '{name}'")


@endpoint
async def list_connections(request: Request) -> Response:
    """``GET /v1/connections``: the caller's project's and the database-wide connections."""
    conns, project = await _begin(request)
    return ok({"connections": await _call(conns.list, project)})


@endpoint
async def add_connection(request: Request) -> Response:
    """``PUT /v1/connections/{name}``: create the project's own (201), or reconnect it (200); only the
    project's own row is ever looked at, so the answer is the same whoever else holds the name."""
    conns, project = await _begin(request)
    name = request.path_params["name"]
    kind, values = await _values(request)
    if await _call(conns.owned, name, project) is not None:
        return ok(await _call(conns.reconnect, name, values, kind=kind, project=project))
    if kind is None:
        raise ApiError("INPUT_INVALID", "a new connection needs 'kind'", problems=[{"path": "$.kind",
                                                                                  "message": "required"}])
    return ok(await _call(conns.add, name, kind, values, project), 201)


@endpoint
async def get_connection(request: Request) -> Response:
    """``GET /v1/connections/{name}``."""
    conns, project = await _begin(request)
    shown = await _call(conns.show, request.path_params["name"], project)
    if shown is None:
        raise _absent(request.path_params["name"])
    return ok(shown)


@endpoint
async def remove_connection(request: Request) -> Response:
    """``DELETE /v1/connections/{name}``: 204; 404 unless the project owns it."""
    conns, project = await _begin(request)
    name = request.path_params["name"]
    if await _call(conns.owned, name, project) is None:
        raise _absent(name)
    await _call(conns.remove, name, project)
    return Response(status_code=204)


ROUTES = [
    Route("/v1/connections", list_connections, methods=["GET"]),
    Route("/v1/connections/{name}", add_connection, methods=["PUT"]),
    Route("/v1/connections/{name}", get_connection, methods=["GET"]),
    Route("/v1/connections/{name}", remove_connection, methods=["DELETE"]),
]

"""The ASGI app of ``flowtide serve``: routes only; the work is in ``ops``, ``steer``, ``hooks`` and ``graphql``."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from temporalio.client import Client

from flowtide.service import cancels, connections_api, hooks, steer
from flowtide.service.auth import RateLimiter, authenticate
from flowtide.service.errors import ApiError, error_response
from flowtide.service.http import (
    DEFAULT_BODY_TIMEOUT_S,
    JSON_TYPES,
    MAX_REVISION,
    YAML_TYPES,
    as_api_error,
    endpoint,
    flow_id_param,
    number_param,
    object_body,
    ok,
    parse_body,
    read_body,
    request_id,
    revision_value,
)
from flowtide.service.ops import MAX_WAIT_S, Service, deploy_flow, deployed, start, wait_ended
from flowtide.store.database import Store
from flowtide.workflows.search_attributes import DEFAULT_TASK_QUEUE

DEFAULT_MAX_BODY = 1024 * 1024


def _svc(request: Request) -> Service:
    return request.app.state.svc  # type: ignore[no-any-return]


async def _who(request: Request, role: str) -> Any:
    svc = _svc(request)
    return await authenticate(request, svc.store, svc.limiter, role)


# ---- flows ------------------------------------------------------------------------------------------
async def _deploy(request: Request, flow_id: str, document: Any) -> Response:
    out = await deploy_flow(_svc(request), request.state.who, flow_id, document)
    return ok(out, 200 if out["unchanged"] else 201)


@endpoint
async def put_flow(request: Request) -> Response:
    request.state.who = await _who(request, "admin")
    raw = await read_body(request, _svc(request).max_body, JSON_TYPES + YAML_TYPES)
    return await _deploy(request, flow_id_param(request), parse_body(raw, request))


@endpoint
async def revert_flow(request: Request) -> Response:
    request.state.who = await _who(request, "admin")
    flow_id = flow_id_param(request)
    body = object_body(parse_body(await read_body(request, _svc(request).max_body), request))
    revision = revision_value(body.get("revision"), "body field 'revision'")
    old = await deployed(_svc(request), request.state.who.project, flow_id, revision)
    return await _deploy(request, flow_id, old["document"])


@endpoint
async def list_flows(request: Request) -> Response:
    who, svc = await _who(request, "read"), _svc(request)
    return ok({"flows": await svc.db(svc.store.flows, who.project)})


@endpoint
async def get_flow(request: Request) -> Response:
    who = await _who(request, "read")
    rev = number_param(request, "revision", 1, MAX_REVISION, integer=True)
    found = await deployed(_svc(request), who.project, flow_id_param(request), int(rev) if rev is not None else None)
    return ok({k: found[k] for k in ("flowId", "revision", "deployedAt", "document")})


@endpoint
async def flow_revisions(request: Request) -> Response:
    who, svc, flow_id = await _who(request, "read"), _svc(request), flow_id_param(request)
    revs = await svc.db(svc.store.revisions, who.project, flow_id)
    if not revs:
        raise ApiError("NOT_FOUND", f"no flow '{flow_id}' in project '{who.project}'")
    return ok({"revisions": revs})


# ---- runs -------------------------------------------------------------------------------------------
@endpoint
async def start_run(request: Request) -> Response:
    who, svc = await _who(request, "run"), _svc(request)
    wait = number_param(request, "wait", 0, MAX_WAIT_S)
    body = object_body(parse_body(await read_body(request, svc.max_body, optional=True), request))
    handle, answer = await start(svc, who, flow_id_param(request), body.get("input"),
                                 request.headers.get("idempotency-key"))
    record = await wait_ended(handle, wait or 0)
    return ok(record, 200) if record is not None else ok(answer, 202)


@endpoint
async def list_runs(request: Request) -> Response:
    who = await _who(request, "read")
    limit = number_param(request, "limit", 1, 100, integer=True)
    q = request.query_params
    return ok(await steer.runs_page(_svc(request), who.project, status=q.get("status") or None,
                                    flow=q.get("flowId") or None, limit=int(limit or 20), cursor=q.get("cursor")))


@endpoint
async def get_run(request: Request) -> Response:
    who = await _who(request, "read")
    return ok(await steer.record(_svc(request), who.project, request.path_params["runId"]))


@endpoint
async def rerun_run(request: Request) -> Response:
    who, svc = await _who(request, "run"), _svc(request)
    body = object_body(parse_body(await read_body(request, svc.max_body, optional=True), request))
    return ok(await steer.rerun(svc, who, request.path_params["runId"], body), 202)


@endpoint
async def signal_run(request: Request) -> Response:
    who, svc = await _who(request, "run"), _svc(request)
    data = parse_body(await read_body(request, svc.max_body, optional=True), request)
    p = request.path_params
    return ok(await steer.signal(svc, who.project, p["runId"], p["name"], data), 202)


@endpoint
async def cancel_run(request: Request) -> Response:
    who = await _who(request, "run")
    return ok(await steer.cancel(_svc(request), who.project, request.path_params["runId"]), 202)


# ---- service ----------------------------------------------------------------------------------------
@endpoint
async def healthz(request: Request) -> Response:
    svc = _svc(request)
    database = await asyncio.to_thread(svc.store.ping)
    temporal = False
    try:
        client = await svc.temporal()
        temporal = bool(await asyncio.wait_for(client.service_client.check_health(), timeout=3))
    except Exception:  # unreachable, slow or refusing: all mean "not healthy" here
        temporal = False
    return ok({"ok": database and temporal, "temporal": temporal, "database": database},
              200 if database and temporal else 503)


@endpoint
async def openapi(request: Request) -> Response:
    from flowtide.service.openapi import document
    return ok(document())


@endpoint
async def graphql(request: Request) -> Response:
    from flowtide.service.graphql import handle
    return await handle(request, _svc(request))


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own answers (no route, wrong method) and anything that escaped ``endpoint``, in our shape."""
    rid = request_id(request)
    if not isinstance(exc, HTTPException):
        return error_response(as_api_error(exc, rid), rid)
    status = exc.status_code
    code = "NOT_FOUND" if status == 404 else "BAD_REQUEST"
    return error_response(ApiError(code, f"{request.method} {request.url.path}: "
                                   f"{'no such endpoint' if status == 404 else 'method not allowed'}",
                                   status=status), rid)


ROUTES = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
    Route("/graphql", graphql, methods=["POST"]),
    Route("/v1/flows", list_flows, methods=["GET"]),
    Route("/v1/flows/{flowId}", put_flow, methods=["PUT"]),
    Route("/v1/flows/{flowId}", get_flow, methods=["GET"]),
    Route("/v1/flows/{flowId}/revisions", flow_revisions, methods=["GET"]),
    Route("/v1/flows/{flowId}/revert", revert_flow, methods=["POST"]),
    Route("/v1/flows/{flowId}/runs", start_run, methods=["POST"]),
    Route("/v1/runs", list_runs, methods=["GET"]),
    Route("/v1/runs/{runId}", get_run, methods=["GET"]),
    Route("/v1/runs/{runId}/rerun", rerun_run, methods=["POST"]),
    Route("/v1/runs/{runId}/signals/{name}", signal_run, methods=["POST"]),
    Route("/v1/runs/{runId}/cancel", cancel_run, methods=["POST"]),
    Route("/v1/hooks/{projectId}/{flowId}", hooks.webhook, methods=["POST"]),
    *connections_api.ROUTES,
]


def build_service(*, database_url: str | None = None, client: Client | None = None, task_queue: str | None = None,
                  temporal_address: str | None = None, migrate: bool = True) -> Service:
    """The service's parts from arguments and the environment (``FLOWTIDE_*``); migrates the database."""
    store = Store(database_url)
    if migrate:
        store.migrate()
    return Service(store=store, client=client,
                   task_queue=task_queue or os.environ.get("FLOWTIDE_TASK_QUEUE", DEFAULT_TASK_QUEUE),
                   limiter=RateLimiter(store), max_body=int(os.environ.get("FLOWTIDE_API_MAX_BODY", DEFAULT_MAX_BODY)),
                   body_timeout=float(os.environ.get("FLOWTIDE_API_BODY_TIMEOUT_S", DEFAULT_BODY_TIMEOUT_S)),
                   temporal_address=temporal_address)


def create_app(svc: Service) -> Starlette:
    """The ASGI app serving ``svc``."""
    from flowtide.guards import tracing
    from flowtide.service.web.headers import SecurityHeaders
    from flowtide.service.web.routes import web_routes
    middleware = [Middleware(SecurityHeaders)]
    if tracing.setup():  # the request's span, continued by the run it starts (docs/tracing.md); none when off
        from flowtide.service.tracing import TraceRequests
        middleware.insert(0, Middleware(TraceRequests))
    app = Starlette(routes=ROUTES + web_routes(), exception_handlers={HTTPException: _http_error,
                                                                      Exception: _http_error},
                    middleware=middleware, lifespan=lambda _app: cancels.sweeping(svc))
    app.state.svc = svc
    return app

"""The pages: ``/runs``, ``/runs/{runId}``, a value as JSON, the re-run plan (the flows: ``flowpages``)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from flowtide.client.history import start_info
from flowtide.client.inspect import inspect_run
from flowtide.client.listing import STATUSES
from flowtide.client.render import duration, when
from flowtide.service import steer
from flowtide.service.errors import ApiError
from flowtide.service.http import ascii_number, number_param
from flowtide.service.ops import Service, find_run, first_run
from flowtide.service.web.auth import SignInNeeded, form, refused, signed_in, templates, to_signin
from flowtide.service.web.runview import CONSOLE_EMPTY, flow_data, run_page
from flowtide.service.web.values import resolve

Handler = Callable[[Request], Awaitable[Response]]
PAGE_SIZE = 20


def page(fn: Handler) -> Handler:
    """Send a browser without a session to sign in, and answer an ``ApiError`` with an HTML error page."""
    @functools.wraps(fn)
    async def wrapped(request: Request) -> Response:
        try:
            return await fn(request)
        except SignInNeeded:
            return to_signin(request)
        except ApiError as err:
            return refused(request, err)
    return wrapped


def _svc(request: Request) -> Service:
    return request.app.state.svc  # type: ignore[no-any-return]


@page
async def runs(request: Request) -> Response:
    """``/runs``: the project's runs, newest first, with the Status / Run ID / flow filters and paging."""
    who, sess = await signed_in(request)
    q = request.query_params
    status, prefix = q.get("status") or None, (q.get("runId") or "").strip() or None
    limit = int(number_param(request, "limit", 1, 100, integer=True) or PAGE_SIZE)
    found = await steer.runs_page(_svc(request), who.project, status=status, flow=q.get("flowId") or None,
                                  run_prefix=prefix, limit=limit, cursor=q.get("cursor") or None)
    rows = [dict(r, run8=r["runId"][:8], started=when(r["startedAt"]), completed=when(r["completedAt"]),
                 duration=duration(r["durationMs"])) for r in found["runs"]]
    keep = {k: v for k, v in (("status", status), ("runId", prefix), ("flowId", q.get("flowId")),
                              ("limit", q.get("limit"))) if v}
    nxt = None
    if found["nextCursor"]:
        nxt = "/runs?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in {**keep, "cursor": found["nextCursor"]}
                                  .items())
    return templates.TemplateResponse(request, "runs.html", {
        "alerts": await reauthorization_alerts(_svc(request), who.project), "who": who, "csrf": sess.csrf,
        "rows": rows, "statuses": STATUSES, "status": status, "prefix": prefix or "",
        "flow": q.get("flowId") or "", "next": nxt, "paged": bool(q.get("cursor")),
        "live": "/live/runs" + (f"?{request.url.query}" if request.url.query else "")})


@page
async def run(request: Request) -> Response:
    """``/runs/{runId}``: one run, built by ``runview.run_page`` from ``inspect_run``'s record."""
    who, sess = await signed_in(request)
    svc = _svc(request)
    client = await svc.temporal()
    handle, _ = await find_run(svc, who.project, request.path_params["runId"])
    view = await inspect_run(handle, client)
    initial = (await start_info(await first_run(client, handle, view.record).fetch_history(),
                                client.data_converter)).params.get("input")
    ctx = run_page(view, initial)
    return templates.TemplateResponse(request, "run.html", {
        **ctx, "who": who, "csrf": sess.csrf, "refresh": f"/live/runs/{quote(ctx['run_id'])}" if ctx["open"] else None,
        "may_run": who.allows("run"), "console_empty": CONSOLE_EMPTY})


@page
async def data(request: Request) -> Response:
    """One value of the run page as JSON (``step``, ``part``, ``pointer``): the whole of what the page cut."""
    who, _ = await signed_in(request)
    svc, q = _svc(request), request.query_params
    client = await svc.temporal()
    handle, _ = await find_run(svc, who.project, request.path_params["runId"])
    rec = (await inspect_run(handle, client)).record
    part = q.get("part", "")
    if part == "flow":
        initial = (await start_info(await first_run(client, handle, rec).fetch_history(),
                                    client.data_converter)).params.get("input")
        value: Any = flow_data(rec, initial)
    elif part == "error" and not q.get("step"):
        value = rec.get("error")
    else:
        steps = rec.get("steps") or []
        n = int(ascii_number(q.get("step", ""), 1, len(steps)) or 0)
        if not 1 <= n <= len(steps) or part not in ("input", "output", "console", "error"):
            raise ApiError("NOT_FOUND", "no such value in this run")
        value = "\n".join(steps[n - 1].get("console") or []) if part == "console" else steps[n - 1].get(part)
    try:
        value = resolve(value, q.get("pointer", ""))
    except KeyError:
        raise ApiError("NOT_FOUND", "no such value in this run") from None
    # served as a JSON document (never HTML), so even a value full of markup stays data
    return JSONResponse(value, headers={"content-disposition": "inline"})


@page
async def rerun_plan(request: Request) -> Response:
    """The dry-run plan: which steps are reused, which run again, which of those have side effects."""
    who, sess = await signed_in(request, "run")
    from_failed = request.query_params.get("fromFailed") == "1"
    plan, desc, revision = await steer.plan(_svc(request), who, request.path_params["runId"],
                                            {"fromFailed": from_failed})
    reused = [s for s in plan.steps if s.action == "reuse"]
    again = [s for s in plan.steps if s.action in ("run again", "run")]
    return templates.TemplateResponse(request, "plan.html", {
        "who": who, "csrf": sess.csrf, "plan": plan, "run_id": desc.run_id, "run8": desc.run_id[:8],
        "flow_id": plan.flow.get("id"), "from_failed": from_failed, "revision": revision, "reused": len(reused),
        "again": len(again), "risky": len([s for s in again if s.side_effect])})


@page
async def rerun_start(request: Request) -> Response:
    """Start the re-run the plan page showed (role run, CSRF token) and go to the new run."""
    who, sess = await signed_in(request, "run")
    fields = await form(request, sess)
    started = await steer.rerun(_svc(request), who, request.path_params["runId"],
                                {"fromFailed": fields.get("fromFailed") == "1"})
    return RedirectResponse(f"/runs/{quote(started['runId'])}", status_code=303)


async def reauthorization_alerts(svc: Any, project: str) -> list[dict[str, Any]]:
    """Connections of the project in state ``error`` (a refused OAuth2 refresh): shown above the runs and flows."""
    from flowtide.store.connections import connection_states
    try:
        states = await svc.db(connection_states, svc.store, project)
    except Exception:  # a database from before connections, or none at all: no alert to show
        return []
    return [c for c in states if c["state"] == "error"]

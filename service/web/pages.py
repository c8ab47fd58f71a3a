"""The pages: ``/runs``, ``/runs/{runId}``, a value as JSON, the re-run plan (the flows: ``flowpages``)."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from flowtide.client.history import start_info
from flowtide.client.inspect import inspect_run
from flowtide.client.listing import STATUSES
from flowtide.service import steer
from flowtide.service.errors import ApiError
from flowtide.service.http import ascii_number, number_param
from flowtide.service.ops import Service, find_run, first_run
from flowtide.service.web import listview
from flowtide.service.web.auth import SignInNeeded, form, refused, signed_in, templates, to_signin
from flowtide.service.web.runview import CONSOLE_EMPTY, flow_data, run_page
from flowtide.service.web.values import resolve
from flowtide.service.web.waiting import payload_of

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
    """``/runs``: the project's runs, newest first: filters, counts per status, ids unique on the page, paging."""
    who, sess = await signed_in(request)
    given, more = listview.filters_of(request.query_params)
    status, prefix, flow = given.get("status"), given.get("runId"), given.get("flowId")
    limit = int(number_param(request, "limit", 1, 100, integer=True) or PAGE_SIZE)
    svc = _svc(request)
    found = await steer.runs_page(svc, who.project, status=status, flow=flow, run_prefix=prefix, limit=limit,
                                  cursor=request.query_params.get("cursor") or None, more=more)
    counts = await steer.run_counts(svc, who.project, flow=flow, run_prefix=prefix, more=more)
    nxt = listview.link(given, cursor=found["nextCursor"]) if found["nextCursor"] else None
    return templates.TemplateResponse(request, "runs.html", {
        "alerts": await reauthorization_alerts(svc, who.project), "who": who, "csrf": sess.csrf,
        "rows": listview.rows(found["runs"]), "statuses": STATUSES, "given": given, "status": status,
        "counts": [(s, counts[s], listview.link(given, status=s)) for s in STATUSES if counts[s] or s == status],
        "all_link": listview.link(given, status=None), "total": sum(counts.values()),
        "next": nxt, "first": listview.link(given) if request.query_params.get("cursor") else None,
        "live": "/live/runs" + (f"?{request.url.query}" if request.url.query else "")})


@page
async def run(request: Request) -> Response:
    """``/runs/{runId}``: one run, built by ``runview.run_page`` from ``inspect_run``'s record."""
    who, sess = await signed_in(request)
    svc = _svc(request)
    client = await svc.temporal()
    handle, _ = await find_run(svc, who.project, request.path_params["runId"])
    view = await inspect_run(handle, client)
    history = await first_run(client, handle, view.record).fetch_history()
    info = await start_info(history, client.data_converter)
    started = time.perf_counter()  # the page's own time (Server-Timing), after Temporal's answers
    rows_page = int(number_param(request, "rows", 1, 1_000_000, integer=True) or 1)
    ctx = run_page(view, info.params.get("input"), info.flow, rows_page, history.events)
    answer = templates.TemplateResponse(request, "run.html", {
        **ctx, "who": who, "csrf": sess.csrf, "refresh": f"/live/runs/{quote(ctx['run_id'])}" if ctx["open"] else None,
        "may_run": who.allows("run"), "console_empty": CONSOLE_EMPTY,
        "signalled": request.query_params.get("signalled")})
    answer.headers["server-timing"] = f"render;dur={(time.perf_counter() - started) * 1000:.1f}"
    return answer


@page
async def send_signal(request: Request) -> Response:
    """Send the signal a waiting run awaits, from its page (role run, CSRF token, optional JSON payload)."""
    who, sess = await signed_in(request, "run")
    fields = await form(request, sess)
    name = fields.get("signal", "")
    await steer.signal(_svc(request), who.project, request.path_params["runId"], name,
                       payload_of(fields.get("payload", "")))
    return RedirectResponse(f"/runs/{quote(request.path_params['runId'])}?signalled={quote(name, safe='')}",
                            status_code=303)


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

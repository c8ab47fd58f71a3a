"""The flows pages: ``/flows`` (health of every flow), ``/flows/{flowId}`` (document, history, diff) and revert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from temporalio.service import RPCError

from flowtide.client.listing import recent_rows
from flowtide.client.render import when
from flowtide.service.errors import ApiError
from flowtide.service.http import MAX_REVISION, bounded_number, flow_id_param, number_param
from flowtide.service.ops import Service, deploy_flow, deployed
from flowtide.service.web import flowview
from flowtide.service.web.auth import form, signed_in, templates
from flowtide.service.web.pages import page, reauthorization_alerts

HEALTH_WINDOW = timedelta(hours=24)  # the runs counted per flow
HEALTH_MAX_RUNS = 2000  # runs read for the counts, newest first (past it the counts say "at least")
FAILURE_WINDOW = timedelta(days=30)  # how far back the last failure is looked for
FAILURE_MAX_RUNS = 500
FORMATS = ("yaml", "json")


def _svc(request: Request) -> Service:
    return request.app.state.svc  # type: ignore[no-any-return]


async def _runs(svc: Service, project: str, flow: str | None) -> tuple[list[Any], list[Any]] | None:
    """The last 24 h of runs and the last 30 days of failed ones (of one flow or all), or None without
    Temporal (the flows and their documents still show: they live in the database)."""
    now = datetime.now(UTC)
    try:
        client = await svc.temporal()
        recent = await recent_rows(client, project=project, flow=flow, since=now - HEALTH_WINDOW,
                                   limit=HEALTH_MAX_RUNS)
        failed = await recent_rows(client, project=project, flow=flow, status="failed",
                                   since=now - FAILURE_WINDOW, limit=1 if flow else FAILURE_MAX_RUNS)
    except (ApiError, RPCError, RuntimeError, OSError):
        return None
    return recent, failed


def _health(runs: tuple[list[Any], list[Any]] | None, flow_id: str) -> dict[str, Any] | None:
    if runs is None:
        return None
    h = flowview.health(runs[0]).get(flow_id, {"counts": {}, "revisions": {}, "total": 0, "failed": 0})
    last = flowview.last_failures(runs[1]).get(flow_id)
    return {**h, "bar": flowview.bar(h["counts"]), "capped": len(runs[0]) >= HEALTH_MAX_RUNS,
            "last": dict(last, at=when(last["at"])) if last else None}


@page
async def flows(request: Request) -> Response:
    """``/flows``: every deployed flow with its revision, its runs of the last 24 h by status, its last failure."""
    who, sess = await signed_in(request)
    svc = _svc(request)
    listed = await svc.db(svc.store.flows, who.project)
    runs = await _runs(svc, who.project, None) if listed else ([], [])
    for f in listed:
        f["deployed"] = when(f["deployedAt"])
        f["health"] = _health(runs, f["flowId"])
    return templates.TemplateResponse(request, "flows.html", {
        "alerts": await reauthorization_alerts(svc, who.project), "who": who, "csrf": sess.csrf,
        "flows": listed, "health_known": runs is not None})


def _format(request: Request) -> str:
    fmt = request.query_params.get("format") or "yaml"
    if fmt not in FORMATS:
        raise ApiError("BAD_REQUEST", f"query parameter 'format': one of {', '.join(FORMATS)}")
    return fmt


def _number(request: Request, name: str) -> int | None:
    value = number_param(request, name, 1, MAX_REVISION, integer=True)
    return int(value) if value is not None else None


@page
async def flow(request: Request) -> Response:
    """``/flows/{flowId}``: the health, one revision's document (``revision``, ``format``), the revision history
    and the diff between revisions ``from`` and ``to`` (default: the deployed one and the one before)."""
    who, sess = await signed_in(request)
    svc, flow_id, fmt = _svc(request), flow_id_param(request), _format(request)
    revs = await svc.db(svc.store.revisions, who.project, flow_id)
    if not revs:
        raise ApiError("NOT_FOUND", f"no flow '{flow_id}' in project '{who.project}'")
    current = revs[0]["revision"]
    shown = await deployed(svc, who.project, flow_id, _number(request, "revision") or current)
    text = flowview.document_text(shown["document"], fmt)
    to = _number(request, "to") or current
    older = [r["revision"] for r in revs if r["revision"] < to]
    frm = _number(request, "from") or (older[0] if older else None)
    diff: dict[str, Any] | None = None
    if frm is not None:
        a, b = await deployed(svc, who.project, flow_id, frm), await deployed(svc, who.project, flow_id, to)
        diff = {"from": frm, "to": to, "rows": [], "too_large": None}
        try:
            diff["rows"] = flowview.diff_rows(flowview.document_text(a["document"], fmt),
                                              flowview.document_text(b["document"], fmt))
        except flowview.TooLargeToCompare as exc:
            diff["too_large"] = str(exc)
    health = _health(await _runs(svc, who.project, flow_id), flow_id)
    for r in revs:
        r["deployed"] = when(r["deployedAt"])
        counts = (health or {}).get("revisions", {}).get(r["revision"], {})
        r["runs"], r["failed"] = sum(counts.values()), sum(counts.get(s, 0) for s in flowview.FAILED)
    q = request.query_params
    return templates.TemplateResponse(request, "flow.html", {
        "alerts": await reauthorization_alerts(svc, who.project), "who": who, "csrf": sess.csrf,
        "flow_id": flow_id, "title": shown.get("title"), "current": current, "revisions": revs,
        "shown": shown["revision"], "format": fmt, "lines": flowview.highlight(text), "diff": diff,
        "health": health, "admin": who.allows("admin"), "reverted": _number(request, "reverted"),
        "unchanged": q.get("unchanged") == "1"})


@page
async def revert(request: Request) -> Response:
    """Deploy an old revision's document as a new revision (role admin, CSRF token), like
    ``POST /v1/flows/{id}/revert``; the deployed revision's own document deploys nothing."""
    who, sess = await signed_in(request, "admin")
    fields = await form(request, sess)
    revision = int(bounded_number(fields.get("revision", ""), "form field 'revision'", 1, MAX_REVISION))
    svc, flow_id = _svc(request), flow_id_param(request)
    old = await deployed(svc, who.project, flow_id, revision)
    new = await deploy_flow(svc, who, flow_id, old["document"])
    return RedirectResponse(f"/flows/{quote(flow_id)}?reverted={new['revision']}"
                            + ("&unchanged=1" if new["unchanged"] else ""), status_code=303)

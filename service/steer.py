"""Reading and steering a project's runs: record, list, rerun, signal, cancel (through the CLI's client code)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import unicodedata
from typing import Any

import structlog
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from flowtide.client.history import start_info
from flowtide.client.inspect import inspect_run
from flowtide.client.listing import BadFilterError, Filters, count_by_status, list_page
from flowtide.client.rerun import RerunPlan, build_plan
from flowtide.client.reuse import RerunRefused
from flowtide.client.runs import check_value, start_run
from flowtide.service import cancels
from flowtide.service.auth import Principal
from flowtide.service.errors import ApiError, problems_of
from flowtide.service.http import revision_value
from flowtide.service.ops import Service, deployed, find_run, first_run, start_answer
from flowtide.workflows.contracts import RESERVED_SIGNAL_PREFIX
from flowtide.workflows.errors import FlowValidationError
from flowtide.workflows.limits import MAX_TEMPORAL_ID_BYTES

log = structlog.get_logger("flowtide.service")


async def record(svc: Service, project: str, ref: str) -> dict[str, Any]:
    """The run record of the project's run ``ref`` (run id or workflow id)."""
    handle, _ = await find_run(svc, project, ref)
    return (await inspect_run(handle, await svc.temporal())).record


MAX_CURSOR_CHARS = 4096  # Temporal's tokens are a few hundred bytes
_CURSOR = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_CURSOR_CHARS}}}={{0,2}}")
_CHECK_BYTES = 8


def _bad_cursor() -> ApiError:
    return ApiError("BAD_REQUEST", "cursor: not a cursor this API gave out (pass nextCursor as it came)")


def _cursor(token: bytes, key: bytes) -> str:
    """The cursor of Temporal's page ``token``: URL-safe base64 of the token and its MAC."""
    return base64.urlsafe_b64encode(token + _check(token, key)).decode()


def _check(token: bytes, key: bytes) -> bytes:
    # keyed with a secret the replicas share (a cursor from one replica pages on another): only a token this
    # API gave out reaches Temporal, so a mistyped, random or rebuilt cursor is a 400 at once instead of after
    # Temporal's retries (seconds)
    return hashlib.blake2b(token, key=key, digest_size=_CHECK_BYTES, person=b"flowtide-cursor").digest()


def _token(cursor: str | None, key: bytes) -> bytes | None:
    """Temporal's page token inside a cursor, or None for the first page.

    Raises:
        ApiError: ``BAD_REQUEST`` for anything but a cursor this API gave out (URL-safe base64, bounded,
            with its MAC).
    """
    if not cursor:
        return None
    if _CURSOR.fullmatch(cursor) is None:
        raise _bad_cursor()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise _bad_cursor() from None
    token, check = raw[:-_CHECK_BYTES], raw[-_CHECK_BYTES:]
    if not token or not hmac.compare_digest(check, _check(token, key)):
        raise _bad_cursor()
    return token


async def runs_page(svc: Service, project: str, *, status: str | None = None, flow: str | None = None,
                    limit: int = 20, cursor: str | None = None, run_prefix: str | None = None,
                    more: Filters | None = None) -> dict[str, Any]:
    """``{"runs": [...], "nextCursor"}``: the project's runs, newest first.

    Raises:
        ApiError: ``BAD_REQUEST`` for a bad filter or cursor.
    """
    client = await svc.temporal()

    async def page(token: bytes | None, size: int) -> Any:
        return await list_page(client, project=project, status=status, flow=flow, limit=size, page_token=token,
                               run_prefix=run_prefix, more=more)

    key = await svc.shared_key("cursor")
    try:
        rows, nxt = await page(_token(cursor, key), limit)
    except BadFilterError as exc:
        raise ApiError("BAD_REQUEST", str(exc)) from None
    except RPCError as exc:
        if not cursor or exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            raise
        # Temporal answers a forged token with INVALID_ARGUMENT or UNKNOWN, as it may a real failure: the
        # same query without the cursor tells them apart (on this failure path only)
        await page(None, 1)
        raise _bad_cursor() from None
    runs = [{"runId": r.run_id, "workflowId": r.workflow_id, "flowId": r.flow_id, "revision": rev,
             "status": r.status, "startedAt": r.started_at.isoformat() if r.started_at else None,
             "completedAt": r.completed_at.isoformat() if r.completed_at else None, "durationMs": r.duration_ms,
             "failedStepId": r.failed_step, "errorCode": r.error_code} for r, rev in rows]
    return {"runs": runs, "nextCursor": _cursor(nxt, key) if nxt else None}


async def run_counts(svc: Service, project: str, *, flow: str | None = None, run_prefix: str | None = None,
                     more: Filters | None = None) -> dict[str, int]:
    """How many of the project's runs match the filters, per status (visibility count queries)."""
    try:
        return await count_by_status(await svc.temporal(), project=project, flow=flow, run_prefix=run_prefix,
                                     more=more)
    except BadFilterError as exc:
        raise ApiError("BAD_REQUEST", str(exc)) from None


async def plan(svc: Service, who: Principal, ref: str, body: dict[str, Any]) -> tuple[RerunPlan, Any, Any]:
    """The re-run plan of the project's run ``ref`` (``body``: ``fromFailed``, ``input``, ``revision``).

    Returns:
        The plan (what ``rerun --dry-run`` prints), the old run's description and the revision to run.

    Raises:
        ApiError: ``NOT_FOUND``, ``CONFLICT`` (still running), ``BAD_REQUEST``, ``INPUT_INVALID``.
    """
    client = await svc.temporal()
    handle, desc = await find_run(svc, who.project, ref)
    view = await inspect_run(handle, client)
    if view.execution_status == "running":
        raise ApiError("CONFLICT", f"run {desc.run_id} is still {view.record.get('status')}: cancel it first")
    first = first_run(client, handle, view.record)  # as `flowtide rerun`: the chain's first run is the run
    if first.run_id != desc.run_id:
        desc = await first.describe()
    info = await start_info(await first.fetch_history(), client.data_converter)
    revision = body.get("revision")
    new_flow = None
    if revision is not None:
        revision = revision_value(revision, "body field 'revision'")
        rev = await deployed(svc, who.project, str((info.params.get("flow") or {}).get("id")), revision)
        new_flow = svc.parsed(who.project, rev).to_wire()  # parsed once per process, like every start
    else:
        revision = await desc.memo_value("revision", None)
    try:
        found = build_plan(info.params, view.record, from_failed=bool(body.get("fromFailed")), new_flow=new_flow,
                           new_input=body.get("input"), input_given="input" in body)
    except RerunRefused as exc:
        raise ApiError("BAD_REQUEST", str(exc)) from None
    except FlowValidationError as err:
        raise ApiError("INPUT_INVALID", "the input does not match the flow's input schema",
                       problems=problems_of(err.problems)) from None
    return found, desc, revision


async def rerun(svc: Service, who: Principal, ref: str, body: dict[str, Any]) -> dict[str, Any]:
    """Start a re-run of the project's run ``ref`` as ``plan`` planned it."""
    found, desc, revision = await plan(svc, who, ref, body)
    try:
        new = await start_run(await svc.temporal(), found.flow, found.payload, task_queue=svc.task_queue,
                              reuse=found.reuse or None, rerun_of=desc.run_id, project_id=who.project,
                              memo={"revision": revision})
    except FlowValidationError as err:  # input that is not plain JSON (NaN, nested too deep): nothing started
        raise ApiError("INPUT_INVALID", "the input is not plain JSON data",
                       problems=problems_of(err.problems)) from None
    return await start_answer(new, revision)


def signal_name(name: str) -> str:
    """``name`` when Temporal takes it as a signal name: not empty, at most ``MAX_TEMPORAL_ID_BYTES`` bytes of
    UTF-8, no control characters, not one of the engine's or Temporal's own (``__flowtide.childStatus``,
    ``__temporal_...``): a caller could otherwise pose as a child run reporting its status.

    Raises:
        ApiError: ``BAD_REQUEST`` saying which rule it breaks.
    """
    if not name:
        raise ApiError("BAD_REQUEST", "signal name: must not be empty")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_TEMPORAL_ID_BYTES:
        raise ApiError("BAD_REQUEST", f"signal name: at most {MAX_TEMPORAL_ID_BYTES} bytes of UTF-8 "
                       "(Temporal's identifier limit)")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in name):
        raise ApiError("BAD_REQUEST", "signal name: must not contain control characters")
    if name.startswith(RESERVED_SIGNAL_PREFIX):
        raise ApiError("BAD_REQUEST", f"signal name: names starting with '{RESERVED_SIGNAL_PREFIX}' are reserved "
                       "for Flowtide's and Temporal's own signals")
    return name


async def signal(svc: Service, project: str, ref: str, name: str, data: Any) -> dict[str, Any]:
    """Send signal ``name`` to the project's run ``ref``."""
    signal_name(name)
    try:
        check_value(data, "data")
    except FlowValidationError as err:
        raise ApiError("INPUT_INVALID", "the signal's data is not plain JSON",
                       problems=problems_of(err.problems)) from None
    handle, desc = await find_run(svc, project, ref)
    _open(desc)
    await _ended_is_conflict(handle.signal(name, data), desc.run_id)
    return {"runId": desc.run_id, "workflowId": handle.id}


async def cancel(svc: Service, project: str, ref: str) -> dict[str, Any]:
    """Ask the project's run ``ref`` to cancel."""
    handle, desc = await find_run(svc, project, ref)
    _open(desc)
    await _ended_is_conflict(handle.cancel(), desc.run_id)
    # the answer does not wait; a run whose workflow task keeps failing is terminated after the grace period,
    # by this replica or, if it dies first, by another one (service.cancels)
    await cancels.watch(svc, handle, desc.run_id)
    return {"runId": desc.run_id, "workflowId": handle.id}


def _open(desc: Any) -> None:
    if desc.status != WorkflowExecutionStatus.RUNNING:
        raise ApiError("CONFLICT", f"run {desc.run_id} has ended: it takes no signals or cancellation")


async def _ended_is_conflict(call: Any, run_id: str) -> None:
    try:
        await call
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise ApiError("CONFLICT", f"run {run_id} has ended: it takes no signals or cancellation") from None
        raise

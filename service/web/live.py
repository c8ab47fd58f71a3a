"""Live updates of the runs pages: server-sent events that say *when* a page changed (the page is re-read then).

Stateless, so any replica serves any stream: each stream asks Temporal (the source of truth) every
``FLOWTIDE_WEB_REFRESH_S`` seconds (default 2, bounded to 0.2-30) and sends an event when what it watches changed.
``/live/runs/{runId}`` watches one run (its status and the length of its history) and ends with ``event: end`` at
a terminal status; ``/live/runs`` watches the first page of the list the page shows (the runs' ids and statuses).
Streams are bounded per browser session, per key and per process, send a comment as heartbeat, end after
``MAX_STREAM_S`` (the browser's ``EventSource`` reconnects by itself) and stop when the client goes away.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send
from temporalio.client import WorkflowExecutionStatus

from flowtide.client.inspect import OPEN_STATUSES
from flowtide.client.resolve import follow_chain
from flowtide.service import steer
from flowtide.service.errors import ApiError
from flowtide.service.http import number_param
from flowtide.service.ops import find_run
from flowtide.service.web import listview
from flowtide.service.web.auth import signed_in
from flowtide.service.web.pages import page
from flowtide.service.web.session import COOKIE

MAX_STREAMS_PER_SESSION = 8  # open streams of one browser session on one replica (a tab holds one)
MAX_STREAMS_PER_KEY = 32  # open streams of all the sessions of one key on one replica
MAX_STREAMS = 500  # open streams of one replica, all sessions
MAX_STREAM_S = 600.0  # a stream ends after this; the browser reconnects (``retry``) and goes on
HEARTBEAT_S = 15.0  # a comment line when nothing else was sent for this long (proxies drop silent connections)
RETRY_MS = 3000  # the reconnection delay the browser is told
HEADERS = {"cache-control": "no-store", "x-accel-buffering": "no"}


def poll_s() -> float:
    """Seconds between two questions of a stream to Temporal (``FLOWTIDE_WEB_REFRESH_S``, default 2, 0.2-30)."""
    try:
        value = float(os.environ.get("FLOWTIDE_WEB_REFRESH_S", "2"))
    except ValueError:
        value = 2.0
    return min(30.0, max(0.2, value)) if value == value else 2.0


def event(name: str, data: Any) -> str:
    """One server-sent event (``data`` as one line of JSON)."""
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class Slots:
    """The open streams of this process, per session, per key and in all (one per app: ``slots(request)``)."""

    def __init__(self) -> None:
        self.by_session: Counter[str] = Counter()
        self.by_key: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return sum(self.by_session.values())

    def take(self, key: str, session: str) -> None:
        """Count one more stream of ``session`` (signed in with ``key``).

        Raises:
            ApiError: ``RATE_LIMITED`` (429) past a bound.
        """
        if self.by_session[session] >= MAX_STREAMS_PER_SESSION:
            raise ApiError("RATE_LIMITED", f"at most {MAX_STREAMS_PER_SESSION} live streams per session: close a "
                           "tab of the runs page", headers={"retry-after": "10"})
        if self.by_key[key] >= MAX_STREAMS_PER_KEY:
            raise ApiError("RATE_LIMITED", f"at most {MAX_STREAMS_PER_KEY} live streams per key: close tabs "
                           "signed in with this key", headers={"retry-after": "10"})
        if self.total >= MAX_STREAMS:
            raise ApiError("RATE_LIMITED", "too many live streams on this server; try again later",
                           headers={"retry-after": "10"})
        self.by_session[session] += 1
        self.by_key[key] += 1

    def give(self, key: str, session: str) -> None:
        for counter, name in ((self.by_session, session), (self.by_key, key)):
            counter[name] -= 1
            if counter[name] <= 0:
                del counter[name]


def slots(request: Request) -> Slots:
    """The app's stream slots (created on first use)."""
    state = request.app.state
    if not hasattr(state, "live_slots"):
        state.live_slots = Slots()
    return state.live_slots  # type: ignore[no-any-return]


class EventStream(StreamingResponse):
    """``text/event-stream`` that gives its slot back however it ends (done, failed, or the client left)."""

    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterator[str], release: Callable[[], None]) -> None:
        super().__init__(content, headers=HEADERS)
        self.release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.release()


Probe = Callable[[], Awaitable[tuple[Any, bool]]]


async def stream(request: Request, probe: Probe, name: str) -> AsyncIterator[str]:
    """Ask ``probe`` (``(state, ended)``) every ``poll_s()``; send ``name`` when the state changed, ``end`` (with
    the final state) once it ended, a heartbeat comment when quiet; stop at the end, after ``MAX_STREAM_S`` or
    when the client left."""
    yield f"retry: {RETRY_MS}\n\n"
    started = sent = time.monotonic()
    last: Any = None
    while time.monotonic() - started < MAX_STREAM_S:
        state, ended = await probe()
        if ended:  # the last change and the end in one event: the page is read once more, not twice
            yield event("end", state)
            return
        if state != last:
            yield event(name, state)
            last, sent = state, time.monotonic()
        if time.monotonic() - sent >= HEARTBEAT_S:
            yield ": heartbeat\n\n"
            sent = time.monotonic()
        await asyncio.sleep(poll_s())
        if await request.is_disconnected():
            return


async def _opened(request: Request, probe_for: Callable[[Any], Awaitable[Probe]], name: str) -> Response:
    who, _ = await signed_in(request)
    probe = await probe_for(who)  # errors (not found, a bad filter) are answered before the stream opens
    session = request.cookies.get(COOKIE, "")
    pool = slots(request)
    pool.take(who.key_id, session)
    return EventStream(stream(request, probe, name), lambda: pool.give(who.key_id, session))


@page
async def run_events(request: Request) -> Response:
    """``/live/runs/{runId}``: ``event: run`` ``{"status", "events"}`` on each change of the run, then ``end``."""
    svc = request.app.state.svc

    async def probe_for(who: Any) -> Probe:
        handle, _ = await find_run(svc, who.project, request.path_params["runId"])
        client = await svc.temporal()

        async def probe() -> tuple[Any, bool]:
            nonlocal handle
            desc = await handle.describe()
            if desc.status == WorkflowExecutionStatus.CONTINUED_AS_NEW:  # the run goes on under a new run id
                handle = await follow_chain(client, handle.id, desc.run_id)
                desc = await handle.describe()
            status = desc.status.name.lower() if desc.status else "unknown"
            return {"status": status, "events": desc.history_length}, desc.status != WorkflowExecutionStatus.RUNNING
        return probe

    return await _opened(request, probe_for, "run")


@page
async def list_events(request: Request) -> Response:
    """``/live/runs``: ``event: runs`` ``[[runId, status], ...]`` when the page's runs change (same filters as
    ``/runs``). A later page (``cursor``) ends once all its runs ended; the first page can gain new runs."""
    svc, q = request.app.state.svc, request.query_params
    limit = int(number_param(request, "limit", 1, 100, integer=True) or 20)
    cursor = q.get("cursor") or None
    given, more = listview.filters_of(q)  # the list's own filters (a bad one is a 400 here, as on the page)

    async def probe_for(who: Any) -> Probe:
        async def probe() -> tuple[Any, bool]:
            found = await steer.runs_page(svc, who.project, status=given.get("status"), flow=given.get("flowId"),
                                          run_prefix=given.get("runId"), limit=limit, cursor=cursor, more=more)
            rows = [[r["runId"], r["status"]] for r in found["runs"]]
            return rows, bool(cursor) and not any(s in OPEN_STATUSES for _, s in rows)
        await probe()  # a bad filter or cursor is a 400 now, not a broken stream
        return probe

    return await _opened(request, probe_for, "runs")

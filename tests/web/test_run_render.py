"""The run page's pictures, waits and row pages, rendered from run records without a browser or Temporal.

These records are what the engine writes (docs/runs.md); the browser tests (test_runs_page.py) walk real runs.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from flowtide.client.inspect import RunView
from flowtide.service.web.auth import templates
from flowtide.service.web.graph import flow_graph, statuses
from flowtide.service.web.listview import ago, moment, rows
from flowtide.service.web.runview import ROWS_PAGE, run_page
from flowtide.service.web.timeline import last_attempts, step_timeline
from flowtide.service.web.waiting import waits

T0 = datetime(2026, 12, 6, 14, 2, 0, tzinfo=UTC)


def row(step: str, status: str, start_s: float, end_s: float | None, kind: str = "core.http",
        **more: Any) -> dict[str, Any]:
    return {"stepId": step, "stepType": kind, "title": step, "status": status, "attempts": more.pop("attempts", 1),
            "startedAt": (T0 + timedelta(seconds=start_s)).isoformat(),
            "completedAt": (T0 + timedelta(seconds=end_s)).isoformat() if end_s is not None else None,
            "durationMs": int((end_s - start_s) * 1000) if end_s is not None else None, "input": more.pop("input", {}),
            "output": None, "console": [], "error": None, "warnings": [], **more}


FLOW = {"id": "approve-order", "steps": [
    {"id": "fetch", "kind": "core.http", "title": "Fetch order"},
    {"id": "big", "kind": "core.if", "blocks": {"then": [{"id": "approve", "kind": "core.wait-for-signal"}],
                                                "else": [{"id": "auto", "kind": "core.set-variable"}]}},
    {"id": "each", "kind": "core.for-each", "blocks": {"steps": [{"id": "ship", "kind": "core.http"}]}},
    {"id": "done", "kind": "core.return"}]}


def render(ctx: dict[str, Any]) -> str:
    return templates.get_template("run.html").render({
        **ctx, "who": None, "csrf": "t", "refresh": None, "may_run": True, "console_empty": "",
        "signalled": None, "request": None})


def view(record: dict[str, Any], status: str = "completed") -> RunView:
    return RunView(record=record, source="query", execution_status=status, task_queue="tq")


def test_graph_draws_branches_loops_statuses_and_the_first_failed_step():
    recs = [row("fetch", "completed", 0, 1), row("big", "completed", 1, 2, "core.if"),
            row("auto", "completed", 1, 1.1, "core.set-variable"),
            row("ship", "completed", 2, 3, path="#0", iteration=0), row("ship", "failed", 3, 4, path="#1",
                                                                         iteration=1)]
    g = flow_graph(FLOW, statuses(recs), lambda sid: f"#step-{sid}", "ship")
    assert g is not None
    svg = str(g["svg"])
    assert svg.startswith("<svg") and 'role="img"' in svg and "<title" in svg and "<desc" in svg
    assert g["nodes"] == 7 and "<script" not in svg and "style=" not in svg
    assert re.search(r'node-failed first-failed"', svg), "the loop's step failed on one item: marked first failed"
    assert 'class="node node-not-run"' in svg  # approve never ran (the else branch did)
    assert ">then<" in svg and ">else<" in svg and ">for each item<" in svg
    assert 'data-href="#step-ship"' in svg and "<a " not in svg  # no control nested in role="img"


def test_timeline_has_a_segment_per_try_and_shades_waits():
    recs = [row("call", "failed", 0, 2, retried=True), row("call", "completed", 3, 5, attempts=3),
            row("hold", "completed", 5, 65, "core.wait-for-signal")]
    tl = step_timeline(list(enumerate(recs, 1)), now=T0 + timedelta(seconds=70))
    assert tl is not None and tl["lanes"] == 2
    svg = str(tl["svg"])
    assert svg.count('class="seg seg-') == 3 and "seg-wait" in svg and "3 attempts" in svg
    assert 'role="img"' in svg and "Timeline of the steps" in svg


def test_timeline_splits_the_attempts_temporal_made_at_the_last_ones_start():
    from temporalio.api.history.v1 import HistoryEvent
    scheduled = HistoryEvent(event_id=5)
    scheduled.activity_task_scheduled_event_attributes.activity_id = "call#2"
    started = HistoryEvent(event_id=7)
    started.event_time.FromDatetime((T0 + timedelta(seconds=4)).replace(tzinfo=None))
    started.activity_task_started_event_attributes.scheduled_event_id = 5
    started.activity_task_started_event_attributes.attempt = 3
    starts = last_attempts([scheduled, started])
    assert starts == {"call#2": [(3, T0 + timedelta(seconds=4))]}
    recs = [row("call", "completed", 0, 5, attempts=3, path="#2", iteration=2)]
    svg = str(step_timeline(list(enumerate(recs, 1)), now=T0, starts=starts)["svg"])  # type: ignore[index]
    assert "attempts 1 to 2 and their backoff" in svg and "attempt 3: completed, 5.0 s" in svg
    assert svg.count('class="seg seg-retry-wait"') == 1


def test_waits_said_plainly_and_the_waiting_step_is_not_running_with_0_attempts():
    recs = [row("fetch", "completed", 0, 1),
            row("approve", "running", 1, None, "core.wait-for-signal", attempts=0, input={"signal": "approve"}),
            row("nap", "running", 1, None, "core.delay", attempts=0, input={"seconds": 3480})]
    found = waits(recs)
    assert [w["text"] for w in found] == ["waiting for signal `approve` since 14:02:01 UTC",
                                         "sleeping until 15:00:01 UTC"]
    rec = {"runId": "r-1", "flowId": "approve-order", "status": "paused", "steps": recs,
           "counts": {"completed": 1, "running": 2},
           "startedAt": T0.isoformat()}
    html = render(run_page(view(rec, "running"), {}, FLOW))
    assert "Waiting for signal <code>approve</code>" in html and "Paused" not in html
    assert 'action="/runs/r-1/signal"' in html and 'name="csrf"' in html and 'name="payload"' in html
    assert "0 attempts" not in html and "Sleeping until 2026-12-06 15:00:01 UTC" in html
    badge = re.search(r'<h1>.*?</h1>', html, re.S).group(0)  # type: ignore[union-attr]
    assert '<svg class="ico"' in badge and "\u23f8" not in html, "the icon is a shape, never a font's glyph"
    assert "1 completed, 2 waiting" in html and "waiting for signal · core.wait-for-signal" in html


def test_runs_list_ids_are_unique_on_the_page_and_times_carry_their_zone():
    same_minute = [{"runId": f"019af3c2-7d4{i}-7000-8000-00000000000{i}", "startedAt": T0.isoformat(),
                    "completedAt": None, "durationMs": None} for i in range(3)]
    shown = rows(same_minute, now=T0 + timedelta(minutes=5))
    assert len({r["short"] for r in shown}) == 3 and all(len(r["short"]) == 13 for r in shown)
    assert shown[0]["started"] == {"iso": "2026-12-06T14:02:00+00:00", "abs": "2026-12-06 14:02:00 UTC",
                                   "rel": "5 min ago"}
    assert ago(T0, T0 + timedelta(days=1, hours=2)) == "1 day ago" and moment(None) is None


def test_large_runs_render_fast_and_page_their_rows():
    """A 10,000-item loop and a 500-step flow: the page's own time (printed; CI machines vary, so no bound)."""
    loop = [row("ship", "completed", i / 100, i / 100 + 0.01, path=f"#{i}", iteration=i) for i in range(10_000)]
    loop[7_321]["status"] = "failed"
    loop[7_321]["error"] = {"code": "HTTP_SERVER_ERROR", "message": "500", "stepId": "ship"}
    rec = {"runId": "r-loop", "flowId": "approve-order", "status": "failed", "steps": loop, "counts": {},
           "firstFailedStep": "ship", "startedAt": T0.isoformat()}
    started = time.perf_counter()
    html = render(run_page(view(rec, "failed"), {}, FLOW, rows_page=3))
    loop_s = time.perf_counter() - started
    assert html.count('<li class="step step-') == ROWS_PAGE and "Rows 401 to 600 of 10,000" in html
    assert 'href="/runs/r-loop?rows=37#step-7322"' in html  # jump to the failed item's page
    many = {"id": "long", "steps": [{"id": f"s{i}", "kind": "core.http"} for i in range(500)]}
    recs = [row(f"s{i}", "completed", i, i + 0.5) for i in range(500)]
    rec = {"runId": "r-long", "flowId": "long", "status": "completed", "steps": recs, "counts": {},
           "startedAt": T0.isoformat()}
    started = time.perf_counter()
    html = render(run_page(view(rec), {}, many))
    long_s = time.perf_counter() - started
    assert "Rows 1 to 200 of 500" in html and html.count('class="step-node"') == 300
    print(f"render time: 10,000-item loop {loop_s * 1000:.0f} ms, 500-step flow {long_s * 1000:.0f} ms")

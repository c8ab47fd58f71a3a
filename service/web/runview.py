"""What the run page shows, from the run record: the same helpers as ``flowtide runs show`` (client.render)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flowtide.client.inspect import OPEN_STATUSES, RunView
from flowtide.client.render import (
    counts_line,
    duration,
    first_failed,
    retry_advice,
    retry_lines,
    row_mark,
    when,
)
from flowtide.service.web import waiting
from flowtide.service.web.graph import flow_graph, statuses
from flowtide.service.web.listview import moment
from flowtide.service.web.timeline import last_attempts, step_timeline
from flowtide.service.web.values import view
from flowtide.workflows.errors import classify

ROWS_PAGE = 200  # step rows a page of the run shows (a 10,000-item loop has 10,000 rows)
CONSOLE_EMPTY = "No console output. Call console.log() from your code to capture diagnostics."


def error_panel(err: dict[str, Any], step: dict[str, Any] | None = None, link: str = "") -> dict[str, Any]:
    """Title (code or "Error"), message, provider status with retryability, pending retry, advice, details.

    ``link`` is the URL of the error as JSON (the page cuts a long message and links to the whole of it).
    """
    status = err.get("providerStatus")
    provider = None
    if status is not None:
        provider = f"Provider status: {status}{' (retryable)' if err.get('retryable') else ''}"
    code = err.get("code") or "Error"
    cls = err.get("class") or classify(str(err.get("code")))
    retry = [line.strip() for line in retry_lines((step or {}).get("retry") or {}, "")]
    return {"title": code, "message": str(err.get("message") or ""), "link": link, "provider": provider, "retry": retry,
            "advice": retry_advice(err), "detail": err.get("detail"),
            "code_line": f"Code: {code}   class: {cls}   type: {err.get('type')}   attempt: {err.get('attempt', 1)}"}


NOTES = {"first": "First failed step", "retrying": "Retrying", "absorbed": "Absorbed: the run went on",
         "retried": "Retried by onError: retry-step",
         "downstream": "Downstream of the first failed step (step {first_n})", "reused": "Reused from the earlier run"}


def _note(n: int, s: dict[str, Any], first_n: int | None) -> str:
    """Why a row is marked (``render.row_mark``), in the page's words."""
    mark = row_mark(n, s, first_n)
    return NOTES[mark].format(first_n=first_n) if mark else ""


def _wait_status(wait: dict[str, Any]) -> str:
    """A waiting row's status, named like the run's: ``paused`` (for a signal) or ``waiting`` (a timer)."""
    return "paused" if wait["kind"] == "signal" else "waiting"


def step_row(run_id: str, n: int, s: dict[str, Any], first_n: int | None,
             wait: dict[str, Any] | None = None) -> dict[str, Any]:
    """One timeline entry with its error panel and its Input / Output / Console views (``wait``: what the step
    waits for, when it is an open ``core.wait-for-signal`` or ``core.delay``)."""
    base = f"/runs/{quote(run_id)}/data?step={n}&part="
    err = s.get("error") or ((s.get("retry") or {}).get("lastError") if s.get("retry") else None)
    extra = [("Attempts", s.get("attempts")), ("Started", when(s.get("startedAt"))),
             ("Completed", when(s.get("completedAt"))), ("Duration", duration(s.get("durationMs")))]
    console = "\n".join(s.get("console") or [])
    it = f" [{s['iteration']}]" if s.get("iteration") is not None else ""
    return {"n": n, "id": f"step-{n}", "stepId": s["stepId"], "title": f"{s.get('title') or s['stepId']}{it}",
            "kind": s["stepType"], "status": _wait_status(wait) if wait else s["status"], "wait": wait,
            "duration": duration(s.get("durationMs")), "attempts": int(s.get("attempts") or 0),
            "note": _note(n, s, first_n), "open": n == first_n,
            "error": error_panel(err, s, base + "error") if err else None,
            "input": view(s.get("input"), base + "input", extra), "output": view(s.get("output"), base + "output",
                                                                                  extra),
            "console": view(console, base + "console") if console else None,
            "has_console": bool(console) or s["stepType"] == "core.code"}


def flow_data(record: dict[str, Any], initial: Any) -> dict[str, Any]:
    """The run's final scope (the Flow Data panel): its input, each step's last output, the run's output."""
    steps: dict[str, Any] = {}
    for s in record.get("steps") or []:
        if s["status"] in ("completed", "warning") and s.get("iteration") is None:
            steps[s["stepId"]] = s.get("output")
    return {"initial": initial, "steps": steps, "output": record.get("output"), "errors": record.get("errors") or []}


def _summary(rec: dict[str, Any], waits: int) -> str:
    """``counts_line`` with the open waits counted as waiting, not running."""
    if not waits:
        return counts_line(rec)
    counts = dict(rec.get("counts") or {})
    counts["running"] = max(0, int(counts.get("running", 0)) - waits)
    line = counts_line({**rec, "counts": counts})
    return f"{'' if line == 'no steps ran' else line + ', '}{waits} waiting"


def _pages(total: int, wanted: int) -> tuple[int, int]:
    """``(page, pages)`` of ``total`` rows, ``ROWS_PAGE`` a page."""
    pages = max(1, -(-total // ROWS_PAGE))
    return min(max(wanted, 1), pages), pages


def run_page(v: RunView, initial: Any, flow: dict[str, Any] | None = None, rows_page: int = 1,
             events: Any = None) -> dict[str, Any]:
    """The template context of ``/runs/{runId}`` (``rows_page``: which ``ROWS_PAGE`` step rows it lists;
    ``events``: the run's history events, for the timeline's attempts)."""
    rec = v.record
    found = first_failed(rec)
    first_n = found[0] if found else None
    run_id = str(rec.get("runId"))
    prog = rec.get("progress") or {}
    rows = rec.get("steps") or []
    is_open = v.execution_status == "running" and rec.get("status") in OPEN_STATUSES
    open_waits = waiting.waits(rows) if is_open else []
    by_n = {w["n"]: w for w in open_waits}
    page, pages = _pages(len(rows), rows_page)
    lo = (page - 1) * ROWS_PAGE
    here = list(enumerate(rows[lo:lo + ROWS_PAGE], lo + 1))
    base = f"/runs/{quote(run_id)}"

    def anchor(n: int) -> str:
        on = (n - 1) // ROWS_PAGE + 1
        return f"#step-{n}" if on == page else f"{base}?rows={on}#step-{n}"

    first_row: dict[str, int] = {}
    for n, s in enumerate(rows, 1):
        first_row.setdefault(s["stepId"], n)
    failed_here = found and found[1]["status"] == "failed"
    status = str(rec.get("status"))
    paused = [p.activity_id for p in v.pending if p.state == "paused"]
    return {"run": rec, "run_id": run_id, "run8": run_id[:8], "status": status, "open": is_open,
            "shown_status": "paused_activity" if paused else status, "paused": paused, "waits": open_waits,
            "progress": f"{prog.get('done', 0)} / {prog.get('total', 0)} steps",
            "started": moment(rec.get("startedAt")), "completed": moment(rec.get("completedAt")),
            "duration": duration(rec.get("durationMs")), "summary": _summary(rec, len(open_waits)),
            "run_error": error_panel(rec["error"], link=f"{base}/data?part=error") if rec.get("error") else None,
            "first_failed": anchor(first_n) if failed_here and first_n else None,
            "steps": [step_row(run_id, n, s, first_n, by_n.get(n)) for n, s in here],
            "page": page, "pages": pages, "rows_from": lo + 1, "rows_to": lo + len(here), "rows_total": len(rows),
            "page_link": lambda p: f"{base}?rows={p}#steps-h",
            "graph": flow_graph(flow or {}, {**statuses(rows), **{w["step"]: _wait_status(w) for w in open_waits}},
                                lambda sid: anchor(first_row[sid]) if sid in first_row else None,
                                rec.get("firstFailedStep") if failed_here else None),
            "timeline": step_timeline(here, starts=last_attempts(events)),
            "flow_data": view(flow_data(rec, initial), f"{base}/data?part=flow"),
            "notes": v.notes(), "failed": rec.get("status") in ("failed", "cancelled", "timed_out", "terminated")}

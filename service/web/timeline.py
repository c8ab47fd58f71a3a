"""The steps as a timeline (a Gantt chart): an SVG made on the server, one lane per step (and loop item).

A lane holds a segment per run of the step: a step that ``onError: retry-step`` ran again has a segment per
try; a step Temporal retried has its earlier attempts (with their backoff) apart from the last one (the history
holds the last attempt's start); a retry Temporal is waiting to start is drawn up to its next attempt. Waits
(``core.delay``, ``core.wait-for-signal``) are shaded. The step table stays the text alternative.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup, escape

from flowtide.client.render import duration
from flowtide.service.web.listview import instant

LABEL_W, BARS_W, LANE_H, TOP = 170, 440, 22, 26
MAX_LANES = 120  # more lanes than this: the first ones, and a line saying so
WAITS = ("core.delay", "core.wait-for-signal")


def last_attempts(events: Any) -> dict[str, list[tuple[int, datetime]]]:
    """From a run's history events: each activity id's ``(attempt, start)`` of the attempt that ended it.

    Temporal writes one *ActivityTaskStarted* per activity, for its last attempt (its ``attempt`` counts the
    tries): so a step that needed 3 attempts shows attempts 1 and 2 with their backoff, then attempt 3.
    """
    scheduled: dict[int, str] = {}
    out: dict[str, list[tuple[int, datetime]]] = {}
    for e in events or []:
        if e.HasField("activity_task_scheduled_event_attributes"):
            scheduled[e.event_id] = e.activity_task_scheduled_event_attributes.activity_id
        elif e.HasField("activity_task_started_event_attributes"):
            a = e.activity_task_started_event_attributes
            if a.scheduled_event_id in scheduled:
                out.setdefault(scheduled[a.scheduled_event_id], []).append(
                    (a.attempt, e.event_time.ToDatetime(tzinfo=UTC)))
    return out


def lanes(rows: list[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Rows (``(number, row)``) grouped by step and loop item, in order of first start."""
    out: dict[str, dict[str, Any]] = {}
    for n, r in rows:
        key = r["stepId"] + str(r.get("path") or "")
        lane = out.setdefault(key, {"n": n, "label": f"{n} {r.get('title') or r['stepId']}"
                                    + (f" [{r['iteration']}]" if r.get("iteration") is not None else ""),
                                    "rows": []})
        lane["rows"].append(r)
    return list(out.values())


Segment = tuple[datetime, datetime, str, str]  # start, end, class, what the hover title says


def _segments(r: dict[str, Any], now: datetime, starts: list[tuple[int, datetime]]) -> list[Segment]:
    start = instant(r.get("startedAt"))
    if start is None:
        return []
    end = instant(r.get("completedAt")) or now
    cls = "wait" if r.get("stepType") in WAITS else str(r.get("status"))
    attempts = int(r.get("attempts") or 0)
    what = f"{r.get('status')}, {duration(r.get('durationMs') or (end - start).total_seconds() * 1000)}"
    last = next((s for s in starts if s[0] > 1 and start < s[1] < end), None)
    if last is None:
        return [(start, end, cls, what + (f", {attempts} attempts" if attempts > 1 else ""))]
    n, at = last
    earlier = "attempt 1 and its backoff" if n == 2 else f"attempts 1 to {n - 1} and their backoff"
    return [(start, at, "retry-wait", earlier), (at, end, cls, f"attempt {n}: {what}")]


def step_timeline(rows: list[tuple[int, dict[str, Any]]], now: datetime | None = None,
                  starts: dict[str, list[tuple[int, datetime]]] | None = None) -> dict[str, Any] | None:
    """``{"svg", "lanes", "cut"}`` for the run page, or None when no step started (``starts``: see
    ``last_attempts``)."""
    now = now or datetime.now(UTC)
    all_lanes = lanes(rows)
    shown = all_lanes[:MAX_LANES]
    segs: list[list[Segment]] = []
    for lane in shown:
        found = [seg for r in lane["rows"] for seg in
                 _segments(r, now, (starts or {}).get(r["stepId"] + str(r.get("path") or ""), []))]
        retry = (lane["rows"][-1].get("retry") or {}).get("nextAttemptAt")
        if retry and found and (nxt := instant(retry)) and nxt > found[-1][1]:
            found.append((found[-1][1], nxt, "retry-wait", "waiting for the next attempt"))
        segs.append(found)
    times = [t for lane in segs for s in lane for t in s[:2]]
    if not times:
        return None
    t0, t1 = min(times), max(times)
    span = max((t1 - t0).total_seconds(), 0.001)

    def x(t: datetime) -> float:
        return LABEL_W + (t - t0).total_seconds() / span * BARS_W

    parts = ['<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
             'patternTransform="rotate(45)"><rect width="6" height="6" class="hatch-bg"/>'
             '<line x1="0" y1="0" x2="0" y2="6" class="hatch-line"/></pattern></defs>']
    for i in range(5):
        tx = LABEL_W + BARS_W * i / 4
        parts.append(f'<line class="tick" x1="{tx:g}" y1="{TOP - 6}" x2="{tx:g}" '
                     f'y2="{TOP + LANE_H * len(shown)}"/>')
        parts.append(f'<text class="tick-label" x="{tx:g}" y="{TOP - 10}">'
                     f'{escape(duration(span * 1000 * i / 4))}</text>')
    for i, (lane, found) in enumerate(zip(shown, segs, strict=True)):
        y = TOP + i * LANE_H
        label = lane["label"] if len(lane["label"]) <= 28 else lane["label"][:27] + "…"
        parts.append(f'<text class="lane-label" x="4" y="{y + 15}" data-href="#step-{lane["n"]}">'
                     f'{escape(label)}</text>')
        for start, end, cls, what in found:
            w = max(x(end) - x(start), 2)
            parts.append(f'<rect class="seg seg-{escape(cls)}" x="{x(start):g}" y="{y + 4}" width="{w:g}" '
                         f'height="{LANE_H - 8}" rx="2"><title>{escape(lane["label"])}: {escape(what)}</title></rect>')
    height = TOP + LANE_H * len(shown) + 6
    width = LABEL_W + BARS_W + 30
    desc = (f"{len(all_lanes)} lanes over {duration(span * 1000)}; waits are shaded; the step table below "
            "lists the same steps with their durations")
    svg = (f'<svg class="timeline-chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           f'role="img" aria-labelledby="tl-title tl-desc"><title id="tl-title">Timeline of the steps</title>'
           f'<desc id="tl-desc">{escape(desc)}</desc>' + "".join(parts) + "</svg>")
    return {"svg": Markup(svg), "lanes": len(all_lanes), "cut": len(all_lanes) > MAX_LANES}

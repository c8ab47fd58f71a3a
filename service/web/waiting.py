"""What an open run waits for, said plainly: a signal (and since when) or a timer (and until when).

The engine publishes ``paused`` while a run (or a child of it) waits for a signal and ``waiting`` during a
``core.delay``; the page names both by what they wait for, and keeps *Paused* for an activity paused in
Temporal (``temporal activity pause``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flowtide.service.http import json_text
from flowtide.service.web.listview import instant, moment

SIGNAL, DELAY = "core.wait-for-signal", "core.delay"


def waits(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The open waits among the step rows: ``{"kind": "signal"|"sleep", "step", "n", "name", "since", "until",
    "text"}`` (``n``: the row's number)."""
    out = []
    for n, r in enumerate(rows, 1):
        if r.get("status") not in ("running", "retrying") or r.get("stepType") not in (SIGNAL, DELAY):
            continue
        inp: dict[str, Any] = r["input"] if isinstance(r.get("input"), dict) else {}
        since = moment(r.get("startedAt"))
        if r["stepType"] == SIGNAL:
            name = str(inp.get("signal") or inp.get("name") or "")
            text = f"waiting for signal `{name}`" + (f" since {since['abs'][11:]}" if since else "")
            out.append({"kind": "signal", "step": r["stepId"], "n": n, "name": name, "since": since,
                        "until": None, "text": text})
            continue
        until = instant(inp.get("until")) if inp.get("until") else None
        start = instant(r.get("startedAt"))
        if until is None and start is not None and isinstance(inp.get("seconds"), int | float):
            until = start + timedelta(seconds=float(inp["seconds"]))
        due = moment(until)
        out.append({"kind": "sleep", "step": r["stepId"], "n": n, "name": None, "since": since, "until": due,
                    "text": f"sleeping until {due['abs'][11:]}" if due else "sleeping"})
    return out


def payload_of(text: str) -> Any:
    """The signal's data from the form's JSON text (empty: ``{}``).

    Raises:
        ApiError: ``BAD_REQUEST`` saying where the JSON is wrong.
    """
    return json_text(text, "payload") if text.strip() else {}

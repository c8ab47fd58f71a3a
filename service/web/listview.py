"""What the runs list shows: ids unique on the page, times with their zone, the filters read from the query."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from flowtide.client.listing import Filters
from flowtide.client.render import duration
from flowtide.client.resolve import short_ids
from flowtide.service.errors import ApiError

# how the pages name a status (any other: capitalised): the engine's ``paused`` is a run waiting for a signal,
# ``waiting`` one in a ``core.delay``; *Paused* is kept for an activity paused in Temporal (``paused_activity``)
STATUS_LABELS = {
    "paused": "Waiting for signal", "waiting": "Sleeping", "completed_with_errors": "Completed with errors",
    "timed_out": "Timed out", "paused_activity": "Paused"}
# the query parameters of /runs that filter (kept by the pager and the status counts' links)
FILTERS = ("status", "runId", "flowId", "errorCode", "from", "to", "limit")


def instant(iso: Any) -> datetime | None:
    """An ISO 8601 time (or a datetime) as an aware datetime (UTC when it names no zone), or None."""
    if not iso:
        return None
    at = iso if isinstance(iso, datetime) else datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
    return at.replace(tzinfo=at.tzinfo or UTC)


def moment(iso: Any, now: datetime | None = None) -> dict[str, str] | None:
    """A time for a ``<time>`` element: ``iso`` (machine), ``abs`` (``2026-12-06 14:02:11 UTC``) and ``rel``
    (``5 min ago``), or None."""
    found = instant(iso)
    if found is None:
        return None
    at = found.astimezone(UTC)
    return {"iso": at.isoformat(), "abs": at.strftime("%Y-%m-%d %H:%M:%S UTC"), "rel": ago(at, now)}


def ago(at: datetime, now: datetime | None = None) -> str:
    """``just now``, ``40 s ago``, ``5 min ago``, ``3 h ago``, ``2 days ago`` (or ``in 5 min`` ahead)."""
    secs = ((now or datetime.now(UTC)) - at).total_seconds()
    ahead, secs = secs < 0, abs(secs)
    if secs < 5:
        return "just now"
    for size, unit in ((86_400, " days"), (3600, " h"), (60, " min"), (1, " s")):
        if secs >= size:
            n = int(secs // size)
            text = f"{n}{' day' if unit == ' days' and n == 1 else unit}"
            return f"in {text}" if ahead else f"{text} ago"
    return "just now"


def utc_field(value: str | None, name: str) -> datetime | None:
    """A ``datetime-local`` form value (``2026-12-06T14:02``) read as UTC, or None.

    Raises:
        ApiError: ``BAD_REQUEST`` naming the field and the expected form.
    """
    if not value or not value.strip():
        return None
    try:
        at = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        at = at.replace(tzinfo=at.tzinfo or UTC)
        at.astimezone(UTC)  # 0001-01-01T00:00+14:00 is a date, but not one in UTC
    except (ValueError, OverflowError):
        raise ApiError("BAD_REQUEST", f"filter '{name}': '{value[:40]}' is not a date and time such as "
                       "2026-12-06T14:02 (UTC)") from None
    return at


def filters_of(q: Any) -> tuple[dict[str, str], Filters]:
    """The filter values given (to keep in links) and the extra filters for the visibility query."""
    given = {k: str(q.get(k)).strip() for k in FILTERS if (q.get(k) or "").strip()}
    more = Filters(error_code=given.get("errorCode"), started_from=utc_field(given.get("from"), "from"),
                   started_to=utc_field(given.get("to"), "to"))
    return given, more


def link(given: dict[str, str], **change: str | None) -> str:
    """``/runs`` with the given filters, some changed (None drops one)."""
    merged = {k: v for k, v in {**given, **change}.items() if v}
    return "/runs" + (f"?{urlencode(merged)}" if merged else "")


def rows(runs: list[dict[str, Any]], now: datetime | None = None) -> list[dict[str, Any]]:
    """The table's rows: each run id cut to the length that tells this page's runs apart (at least 8)."""
    width = short_ids([r["runId"] for r in runs])
    return [dict(r, short=r["runId"][:width], started=moment(r["startedAt"], now),
                 completed=moment(r["completedAt"], now), duration=duration(r["durationMs"])) for r in runs]

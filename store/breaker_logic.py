"""What a circuit breaker decides, whichever store keeps it (``breakers``: one machine's SQLite file;
``breakers_shared``: the service database, for workers on several machines): pure functions of a row."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flowtide.workflows.errors import StepFailure, classify

HALF_OPEN_WAIT_S = 1.0  # while a trial call decides, the others retry this soon
COUNTED = frozenset({"transient", "rate-limit"})


@dataclass
class Ticket:
    """A call the breaker let through: its key and config, and whether it is the half-open trial."""

    key: str
    config: dict[str, Any]
    trial: bool
    started: float


def new_row(state: str, failures: list[float], cfg: dict[str, Any], *, open_until: float = 0,
            trial_until: float = 0, opened: int = 0) -> dict[str, Any]:
    """A breaker's state as both stores keep it."""
    return {"state": state, "failures": failures, "open_until": open_until, "trial_until": trial_until,
            "opened": opened, "config": cfg}


def entered(row: dict[str, Any] | None, key: str, cfg: dict[str, Any], now: float,
            trial_timeout_s: float) -> tuple[dict[str, Any] | None, Ticket | None, float]:
    """What a call finds: ``(row to write or None, ticket)`` when it goes through (the trial writes the
    half-open row), ``(None, None, seconds to wait)`` when it is refused."""
    if row is None or row["state"] == "closed":
        return None, Ticket(key, cfg, trial=False, started=now), 0.0
    if row["state"] == "open" and now < row["open_until"]:
        return None, None, row["open_until"] - now
    if row["state"] == "half-open" and now < row["trial_until"]:
        return None, None, HALF_OPEN_WAIT_S
    # open time over (or the last trial never reported): this call is the trial
    trial = new_row("half-open", row["failures"], cfg, open_until=row["open_until"],
                    trial_until=now + trial_timeout_s, opened=row["opened"])
    return trial, Ticket(key, cfg, trial=True, started=now), 0.0


def left(row: dict[str, Any] | None, ticket: Ticket, code: str | None, now: float) -> dict[str, Any] | None:
    """The row after a call let through ended (``code``: its failure code, None on success); None: unchanged."""
    counted, cfg = code is not None and classify(code) in COUNTED, ticket.config
    state = row["state"] if row is not None else "closed"
    failures: list[float] = row["failures"] if row is not None else []
    opened = int(row["opened"]) if row is not None else 0
    if ticket.trial and state == "half-open":
        if counted:
            return new_row("open", failures, cfg, open_until=now + float(cfg["openSeconds"]), opened=opened + 1)
        return new_row("closed", [], cfg, opened=opened)  # the provider answered (even a 4xx is an answer)
    if counted and state == "closed":
        failures = [t for t in failures if t > now - float(cfg["windowSeconds"])] + [now]
        if len(failures) >= int(cfg["failureThreshold"]):
            return new_row("open", failures, cfg, open_until=now + float(cfg["openSeconds"]), opened=opened + 1)
        return new_row("closed", failures, cfg, opened=opened)
    return None


def refusal(key: str, state: str, wait: float) -> StepFailure:
    """The ``CIRCUIT_OPEN`` failure of a call the breaker of ``key`` refused."""
    return StepFailure("CIRCUIT_OPEN", f"the circuit breaker of '{key}' is {state}: the call was not made",
                       detail=f"retry in {wait:.1f}s; `flowtide breakers reset {key}` closes it",
                       retry_after_s=max(0.1, wait))


def needs_writing(ticket: Ticket, code: str | None) -> bool:
    """Only a trial's outcome and a counted failure change a breaker: a success in the closed state writes
    nothing (the common case costs no transaction)."""
    return ticket.trial or (code is not None and classify(code) in COUNTED)


def decoded(found: Any) -> dict[str, Any]:
    """A stored row (either store's) as the functions above take it: failures and config decoded."""
    return {**dict(found), "failures": json.loads(found["failures"]), "config": json.loads(found["config"])}

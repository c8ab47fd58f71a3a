"""Running loop iterations: in item order, at most ``concurrency`` at a time, with exact counts.

Shared by inline loops (``loops.for_each``) and the loop's child runs (``loops.batches``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from temporalio import workflow

from flowtide.workflows.contracts import ErrorRecord, WireStep, error_record
from flowtide.workflows.engine._flow_control import BudgetSpent, Halt, ReturnNow, StopFlow
from flowtide.workflows.engine._state import Frame
from flowtide.workflows.errors import TemplateError
from flowtide.workflows.language.loop_policy import Control, threshold_record

if TYPE_CHECKING:
    from flowtide.workflows.engine._protocols import LoopHost

MAX_KEPT_RESULTS = 1000
MAX_KEPT_FAILURES = 100
RESULTS_BUDGET_BYTES = 512 * 1024  # results ride in the run record, which must fit one 2 MiB payload


@dataclass
class Tally:
    """What a loop (or a part of it) counted; ``done`` items (a prefix of them) have run."""

    count: int = 0
    done: int = 0
    succeeded: int = 0
    failed: int = 0
    results: list[Any] | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)  # {index, stepId, code, message}
    first_halt: ErrorRecord | None = None
    ended: str | None = None  # "return" / "stop": an iteration ended the whole run; "budget": its steps ran out
    errors: list[ErrorRecord] = field(default_factory=list)  # from child runs only (inline: in the state)
    errors_omitted: int = 0
    by_code: dict[str, int] = field(default_factory=dict)  # failed items by the code of their first error
    threshold: dict[str, Any] | None = None  # the failurePolicy threshold that stopped the loop
    throttle: dict[str, Any] | None = None  # an adaptive loop's concurrency state (``Throttle.state``)

    def halted(self, coe: bool) -> bool:
        """Whether the loop stops: a failure policy threshold was crossed, or an iteration failed and the
        loop does not continue on error."""
        return self.threshold is not None or (self.first_halt is not None and not coe)

    def fail(self, index: int, record: ErrorRecord) -> None:
        """Count a failed item; keep its summary while fewer than ``MAX_KEPT_FAILURES`` are kept."""
        self.failed += 1
        code = str(record.get("code") or "UNKNOWN_ERROR")
        self.by_code[code] = self.by_code.get(code, 0) + 1
        if len(self.failures) < MAX_KEPT_FAILURES:
            self.failures.append({"index": index, "stepId": record.get("stepId"), "code": record.get("code"),
                                  "message": record.get("message")})

    def summary(self) -> dict[str, Any]:
        """The loop step's output."""
        out: dict[str, Any] = {"count": self.count, "succeeded": self.succeeded, "failed": self.failed,
                               "results": self.results, "failures": self.failures}
        if self.results is None:
            out["resultsOmitted"] = (f"results are kept for loops of at most {MAX_KEPT_RESULTS} items "
                                     f"and {RESULTS_BUDGET_BYTES // 1024} KiB")
        if self.failed > len(self.failures):
            out["failuresOmitted"] = self.failed - len(self.failures)
        if self.done < self.count:
            out["notRun"] = self.count - self.done
        return out


def history_length() -> int:
    """This run's history length so far (deterministic: the same on replay)."""
    return workflow.info().get_current_history_length()


async def iterate(wf: LoopHost, body: list[WireStep], start: list[str] | None, frame: Frame,
                  items: Sequence[Any], offset: int, concurrency: int, coe: bool, *, keep_results: bool,
                  budget: int, control: Control | None = None) -> Tally:
    """Run ``items`` (indexes ``offset..``) in order, at most ``concurrency`` at a time.

    Stops taking new items when one halts the loop, when a failure policy threshold is crossed, when an
    iteration ends the run, or once this run's history has ``budget`` events (the first item always runs,
    so every call makes progress); items already running finish. ``Tally.done`` says how many items ran.
    With an adaptive ``control.throttle``, at most ``throttle.current`` items run at once.
    """
    ctl = control or Control()
    tally = Tally(count=len(items), results=[] if keep_results else None)
    outputs: dict[int, Any] = {}
    cursor = 0
    running = 0

    def may_start() -> bool:
        if tally.ended is not None or tally.halted(coe) or cursor >= len(items):
            return False
        return cursor == 0 or history_length() < budget

    async def one(k: int) -> None:
        index = offset + k if ctl.indexes is None else ctl.indexes[k]  # aligned with ``items`` (batch: a slice)
        child = frame.child(index, items[k])
        child.heartbeats = child.heartbeats or ctl.throttle is not None
        record = await _run_item(wf, body, start, child, tally, index, coe)
        if record is not None:
            _check_policy(tally, ctl, record, done=offset + k + 1)
        if ctl.throttle is not None:
            throttled = child.throttled > 0 or (record is not None and record.get("class") == "rate-limit")
            ctl.throttle.after(offset + k, throttled, offset + cursor)
        outputs[k] = child.last_output

    def room() -> bool:
        return ctl.throttle is None or running < ctl.throttle.current or not may_start()

    async def lane() -> None:
        # Lanes pull the next item in order, so the items that ran are always a prefix of the list.
        nonlocal cursor, running
        while True:
            while not room():  # lanes woken together re-check: the first one may have taken the room
                await workflow.wait_condition(room)
            if not may_start():
                return
            k = cursor
            cursor += 1
            running += 1
            try:
                await one(k)
            finally:
                running -= 1

    await asyncio.gather(*(lane() for _ in range(min(concurrency, len(items)))))
    tally.done = cursor
    if ctl.throttle is not None:
        tally.throttle = ctl.throttle.state()
    if keep_results:
        tally.results = [outputs.get(k) for k in range(cursor)]
    return tally


async def _run_item(wf: LoopHost, body: list[WireStep], start: list[str] | None, child: Frame,
                    tally: Tally, index: int, coe: bool) -> ErrorRecord | None:
    """Run one iteration and count it; return the error record of a failed item, else None."""
    try:
        await wf.run_block(body, child, start=start)
    except Halt as h:
        if isinstance(h, BudgetSpent) and workflow.patched("budget-ends-the-loop"):
            # the run's step budget is spent: no item may run another step, and no continueOnError absorbs
            # that; the loop stops and the run fails with this record (workflows.engine.loops.for_each._finish)
            tally.fail(index, h.record)
            if tally.ended is None:
                tally.ended, tally.first_halt = "budget", h.record
            child.last_output = None
            return None
        _halt(tally, index, h.record, coe)
        return h.record  # the failed step's output (an HTTP error body) stays readable as last_output
    except TemplateError as exc:  # a skip or routing condition that cannot be evaluated
        record = error_record(step_id=None, step_type=None, code="TEMPLATE_ERROR", message=str(exc),
                              iteration=index)
        wf.state.add_error(record)
        _halt(tally, index, record, coe)
        child.last_output = None
        return record
    except (ReturnNow, StopFlow) as e:
        tally.ended = tally.ended or ("return" if isinstance(e, ReturnNow) else "stop")
        child.last_output = None
        return None
    if child.failures:
        first = child.first_error or cast(ErrorRecord, {})
        tally.fail(index, first)
        return first
    tally.succeeded += 1
    return None


def _check_policy(tally: Tally, ctl: Control, record: ErrorRecord, *, done: int) -> None:
    """After a failed item: stop the loop when the failure policy's threshold is crossed."""
    if ctl.policy is None or tally.threshold is not None:
        return
    failed = ctl.prior_failed + tally.failed
    name = ctl.policy.crossed(failed, ctl.total, record)
    if name is not None:
        tally.threshold = threshold_record(name, failed, done, tally.by_code)


def _halt(tally: Tally, index: int, record: ErrorRecord, coe: bool) -> None:
    tally.first_halt = tally.first_halt or record
    if coe:
        record["absorbed"] = True  # the loop goes on: this failure does not fail the run
    tally.fail(index, record)

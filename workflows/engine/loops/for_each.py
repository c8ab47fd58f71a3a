"""``core.for-each`` / ``logic::loop``: iterations with bounded concurrency; big loops go to child runs.

A loop runs its iterations inside the run itself only while that keeps the run's history small: at most
one batch of items (``settings.limits.loopBatchSize``, default 500, fewer when the body has many steps)
and an estimated history below ``INLINE_BUDGET`` events. Otherwise, or when an inline loop finds the
history fuller than estimated, the remaining items run in child runs (``workflows.engine.loops.batches``), so that no
history grows with the number of items.

Iterations start in item order, at most ``concurrency`` at a time, each in its own frame (its own step
outputs and retry counters). ``items`` is a list, or an integer N meaning ``0 .. N-1`` (a big loop then
needs no big payload). Output: ``{count, succeeded, failed, failures, results}``: the counts are exact,
``failures`` keeps the first ``MAX_KEPT_FAILURES`` failed items, ``results`` (the last output of each
iteration) only for loops of at most ``MAX_KEPT_RESULTS`` items that fit ``RESULTS_BUDGET_BYTES``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from flowtide.workflows import limits
from flowtide.workflows.contracts import StepRow, WireStep, error_record
from flowtide.workflows.engine import metrics
from flowtide.workflows.engine._flow_control import BudgetSpent, ReturnNow, StopFlow
from flowtide.workflows.engine._state import Frame
from flowtide.workflows.engine.loops import batches
from flowtide.workflows.engine.loops import reuse as loop_reuse
from flowtide.workflows.engine.loops.iterate import (
    MAX_KEPT_RESULTS,
    RESULTS_BUDGET_BYTES,
    Tally,
    history_length,
    iterate,
)
from flowtide.workflows.errors import StepFailure
from flowtide.workflows.kinds import FOR_EACH
from flowtide.workflows.language.loop_policy import Control, Throttle, concurrency_problems, failure_policy
from flowtide.workflows.language.templates import render

if TYPE_CHECKING:
    from flowtide.workflows.engine._protocols import LoopHost

MAX_CONCURRENCY = 200
# History events one body step of one item may cost in the worst case: a remote activity completing on
# its own (scheduled/started/completed + a workflow task's scheduled/started/completed) is 6, a delay
# with its two status upserts 8. Batch sizes and the inline decision use it, so they err on the safe side.
EVENTS_PER_STEP = 8
BATCH_EVENTS = 6000  # the most one batch child is planned to take (Temporal warns at 10,240)
INLINE_BUDGET = 6000  # an inline loop starts no new item once its run's history is this long


def _body(step: WireStep, block: dict[str, WireStep]) -> tuple[list[WireStep], list[str] | None]:
    nested = (step.get("blocks") or {}).get("steps")
    if nested:
        return nested, None
    return list(block.values()), list(step.get("next") or [])  # graph style: the loop's next steps


def count_steps(steps: list[WireStep]) -> int:
    """Steps in a body, nested blocks included."""
    return sum(1 + sum(count_steps(b) for b in (s.get("blocks") or {}).values()) for s in steps)


def batch_size(settings: dict[str, Any], body: list[WireStep]) -> int:
    """Items per batch: ``limits.loopBatchSize``, lowered so one batch stays within ``BATCH_EVENTS``."""
    limit = limits.limit(settings, "loopBatchSize")
    return max(1, min(limit, BATCH_EVENTS // (EVENTS_PER_STEP * max(1, count_steps(body)))))


def _concurrency(value: Any) -> tuple[int, bool]:
    """``(max, adaptive)`` of a rendered ``concurrency``: a number, or ``{max, adaptive}``."""
    adaptive = False
    if isinstance(value, dict):
        problems = concurrency_problems(value)
        if problems:
            raise StepFailure("VALIDATION_ERROR", f"for-each 'concurrency{problems[0][0]}' {problems[0][1]}",
                              retryable=False)
        value, adaptive = value.get("max", 1), bool(value.get("adaptive", False))
    try:
        return max(1, min(MAX_CONCURRENCY, int(value or 1))), adaptive
    except (TypeError, ValueError):
        raise StepFailure("VALIDATION_ERROR", f"for-each 'concurrency' is not a number: {value!r}",
                          retryable=False) from None


def _settings(wf: LoopHost, step: WireStep, frame: Frame
              ) -> tuple[Sequence[Any], int, bool, Control]:
    inp = step.get("input") or {}
    strict = bool(wf.settings.get("strictTemplates"))
    items = render(inp.get("items"), frame.scope, strict=strict)
    if isinstance(items, int) and not isinstance(items, bool):
        items = range(max(0, items))  # never materialised: 100,000 items cost no memory or payload
    if not isinstance(items, list | range):
        raise StepFailure("VALIDATION_ERROR", "for-each 'items' must be a list or a number of items, "
                          f"got {type(items).__name__}", retryable=False)
    concurrency, adaptive = _concurrency(render(inp.get("concurrency", 1), frame.scope))
    policy = failure_policy(render(inp.get("failurePolicy"), frame.scope))
    # a policy that tolerates some failures means the loop goes on after one, unless told otherwise
    tolerant = policy is not None and (policy.max_failures is not None or policy.max_ratio is not None)
    coe = bool(render(inp.get("continueOnError", step.get("next") is not None or tolerant), frame.scope))
    control = Control(policy=policy, total=len(items), throttle=Throttle(concurrency) if adaptive else None)
    return items, concurrency, coe, control


async def for_each(wf: LoopHost, step: WireStep, frame: Frame, rec: StepRow,
                   block: dict[str, WireStep]) -> dict[str, Any]:
    """Run the loop step; output ``{count, succeeded, failed, failures, results}``."""
    items, concurrency, coe, control = _settings(wf, step, frame)
    body, start = _body(step, block)
    batch = batch_size(wf.settings, body)
    rec["input"] = {"items": len(items), "concurrency": concurrency, "continueOnError": coe}
    plan = loop_reuse.planned(wf, step, frame, len(items))
    if plan is not None:  # rerun --failed-items: only these items run, the others keep their results
        count, items, control.indexes = len(items), loop_reuse.subset(items, plan), plan["rerun"]
        rec["input"]["rerunItems"] = len(items)
    if control.policy is not None:
        rec["input"]["failurePolicy"] = control.policy.to_dict()
    if control.throttle is not None:
        rec["input"]["adaptive"] = True
        control.throttle.note(0)
    keep = len(items) <= MAX_KEPT_RESULTS
    tally = Tally(count=len(items), results=[] if keep else None)
    estimate = len(items) * EVENTS_PER_STEP * max(1, count_steps(body))
    if len(items) <= batch and history_length() + estimate <= INLINE_BUDGET:
        tally = await iterate(wf, body, start, frame, items, 0, concurrency, coe, keep_results=keep,
                              budget=INLINE_BUDGET, control=control)
    batched = tally.done < len(items) and not tally.halted(coe) and tally.ended is None
    if batched:
        await batches.run_loop(wf, step, frame, items, tally, concurrency=concurrency, coe=coe, batch=batch,
                                control=control)
    metrics.loop_items(step["kind"], tally.done)  # the items run now, not the ones a rerun reuses
    if plan is not None:
        tally = loop_reuse.combine(tally, plan, count)
    return _finish(wf, step, frame, tally, coe, batched=batched)


def _finish(wf: LoopHost, step: WireStep, frame: Frame, tally: Tally, coe: bool, *, batched: bool
            ) -> dict[str, Any]:
    for e in tally.errors:
        wf.state.add_error(e)
    if tally.errors_omitted:
        wf.state.add_error(error_record(
            step_id=step["id"], step_type=FOR_EACH, code="UNKNOWN_ERROR", severity="warning",
            message=f"{tally.errors_omitted} more error record(s) from the loop's iterations are not kept "
                    f"(the loop output counts every failed item)"))
    if tally.results is not None and len(json.dumps(tally.results, default=str)) > RESULTS_BUDGET_BYTES:
        tally.results = None
    loop = wf.state.loops[step["id"] + frame.suffix] = {"stepId": step["id"], "count": tally.count,
                                                        "succeeded": tally.succeeded, "failed": tally.failed,
                                                        "batched": batched}
    if tally.throttle is not None:  # the concurrency an adaptive loop used over time
        loop["concurrency"] = tally.throttle["trace"]
    if tally.ended == "budget" and tally.first_halt is not None:
        raise BudgetSpent(tally.first_halt)  # an enclosing loop stops on it too
    if tally.ended == "return":
        raise ReturnNow()
    if tally.ended == "stop":
        raise StopFlow()
    out = tally.summary()
    if tally.threshold is not None:
        t = tally.threshold
        counts = ", ".join(f"{c}: {n}" for c, n in t["byCode"].items())
        raise StepFailure("LOOP_FAILURE_THRESHOLD", f"failurePolicy {t['threshold']} crossed: {t['failed']} "
                          f"item(s) failed of {t['done']} finished ({counts})", output=out, retryable=False,
                          detail=json.dumps(t))
    if tally.halted(coe):
        h: dict[str, Any] = dict(tally.first_halt or {})
        raise StepFailure(h.get("code") or "UNKNOWN_ERROR", f"iteration {h.get('iteration')} failed at step "
                          f"'{h.get('stepId')}': {h.get('message')}", type=h.get("type", "execution"), output=out,
                          provider_status=h.get("providerStatus"), retryable=False)
    return {"output": out, "attempt": 1}

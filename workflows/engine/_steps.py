"""One step's run: reuse, budget, skip, runLimit, attempts, retries, onError, routing, and its row in the record."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from temporalio import workflow

from flowtide.workflows import limits
from flowtide.workflows.contracts import ErrorRecord, StepRow, WireStep, error_record
from flowtide.workflows.engine import metrics
from flowtide.workflows.engine._events import LOCAL_STEPS_PER_TASK, end_task, history_events, unwritten
from flowtide.workflows.engine._flow_control import (
    BudgetSpent,
    ControlSignal,
    Halt,
    Outcome,
    RetryWorkflow,
    failure_from_exception,
)
from flowtide.workflows.engine._state import Frame, new_meta, step_entry
from flowtide.workflows.engine._weigh import bounded, judge_output, weigh_output, weigh_vars
from flowtide.workflows.engine._workflow_kinds import WORKFLOW_KINDS
from flowtide.workflows.errors import StepFailure
from flowtide.workflows.kinds import FOR_EACH, NOT_REUSABLE
from flowtide.workflows.language.conditions import evaluate
from flowtide.workflows.language.pure import PURE
from flowtide.workflows.language.templates import SECRET_NONCE, hide_secret_nonce, render

if TYPE_CHECKING:
    from flowtide.workflows.engine._protocols import RunHost

# In-workflow steps (set-variable, if, a `next` cycle of them) run inside one workflow task; past this many
# in one task, the run sleeps 1 ms so the task ends before the SDK's 2 s deadlock detector fails it (which
# would retry the task forever: a runaway cycle would hang instead of reaching the step budget).
STEPS_PER_TASK = 200
# Temporal terminates a run whose history reaches 51,200 events (limit.historyCount.error), and 10,000 remote
# steps write ~60,000: past this many events a run that cannot continue as new (a cycle inside a branch, or
# state too large to carry) fails with STEP_BUDGET_EXCEEDED instead, with its record.
HISTORY_GUARD = 40_000


async def exec_step(wf: RunHost, step: WireStep, frame: Frame, block: dict[str, WireStep]
                    ) -> Outcome:
    """Run one step with skip, runLimit, retries, onError and routing; return where to go next."""
    sid = step["id"]
    if frame.iteration is None and sid in wf.reuse and step["kind"] not in NOT_REUSABLE:
        # rerun --from-failed: the recorded output stands in for the step (no side effect repeats)
        return _reused(wf, step, frame, wf.reuse.pop(sid))
    _budget(wf, step)
    await _yield_now_and_then(wf)
    if step.get("skipCondition") is not None and evaluate(
            step["skipCondition"], frame.scope, strict=wf.strict()):
        return _skipped(wf, step, frame)
    on_error = step.get("onError") or wf.settings.get("onError") or {}
    action = on_error.get("action") or "stop-workflow"
    # maxRetries re-runs the step before the action applies (retry-step; also stop-workflow, as in seed
    # 004's important-operation, continue-workflow and next); for retry-workflow it counts restarts
    retries_left = int(on_error.get("maxRetries") or 0) if action != "retry-workflow" else 0
    while True:
        rec = wf.state.begin(step, frame, workflow.now())
        done = wf.state.progress()
        workflow.set_current_details(f"**running** step `{sid}{frame.suffix}` ({step['kind']}) — "
                                     f"{done['done']} / {done['total']} steps done")
        failure = await _attempt(wf, step, frame, rec, block)
        if failure is None:
            return Outcome(next=_route(wf, step, frame))
        if retries_left > 0 and failure["code"] != "RUN_LIMIT_REACHED":
            retries_left -= 1
            rec["retried"] = True  # superseded by the next run of the step: not counted, not in $errors
            continue
        wf.state.add_error(failure)
        frame.failures += 1
        frame.first_error = frame.first_error or failure
        return _after_failure(wf, step, frame, failure, on_error, action)


def _after_failure(wf: RunHost, step: WireStep, frame: Frame, failure: ErrorRecord,
                   on_error: dict[str, Any], action: str) -> Outcome:
    if step.get("continueOnError") or action == "continue-workflow":
        failure["absorbed"] = True
        return Outcome(next=_route(wf, step, frame, failed=True))
    if on_error.get("next"):
        failure["absorbed"] = True
        return Outcome(next=[on_error["next"]], goto=on_error["next"])
    if action == "retry-workflow" and frame.iteration is None and \
            wf.workflow_retries < int(on_error.get("maxRetries") or 0):
        raise RetryWorkflow()
    raise Halt(failure)


def _route(wf: RunHost, step: WireStep, frame: Frame, failed: bool = False) -> list[str]:
    cond = step.get("condition")
    if cond and not failed:
        hit = evaluate(cond["if"], frame.scope, strict=wf.strict())
        return list(cond.get("then" if hit else "else") or [])
    if step["kind"] == FOR_EACH and not (step.get("blocks") or {}).get("steps"):
        return []  # graph style: the loop's next steps are its body, already run once per item
    return list(step.get("next") or [])


async def _yield_now_and_then(wf: RunHost) -> None:
    """Deterministic: counts steps and work per workflow task (``workflow.now()`` is the task's time)."""
    now, count = wf.task_steps
    count = count + 1 if now == workflow.now() else 1
    if count == 1:
        wf.work.new_task()
    wf.task_steps = (workflow.now(), count)
    if count >= STEPS_PER_TASK:
        await end_task(wf, "yield (many in-workflow steps)")
    elif unwritten(wf) >= LOCAL_STEPS_PER_TASK:
        await end_task(wf, "yield (many local steps)")
    elif wf.work.tired() and bounded():
        await end_task(wf, "yield (much template work)")
    wf.work.new_step()


def _budget(wf: RunHost, step: WireStep) -> None:
    wf.state.executions += 1
    limit = limits.limit(wf.settings, "maxStepExecutions")
    events = history_events(wf)
    if 0 < limit < wf.state.executions:  # -1: no limit (a deliberately endless run)
        message = (f"the run executed more than {limit} steps (settings.limits.maxStepExecutions); "
                   "is a next-cycle missing a runLimit?")
    elif events > HISTORY_GUARD:
        message = (f"the run's history has {events} events, near Temporal's limit, after "
                   f"{wf.state.executions} steps; is a next-cycle missing a runLimit?")
    else:
        return
    rec = error_record(step_id=step["id"], step_type=step["kind"], code="STEP_BUDGET_EXCEEDED", message=message)
    wf.state.add_error(rec)
    raise BudgetSpent(rec)


def _skipped(wf: RunHost, step: WireStep, frame: Frame) -> Outcome:
    rec = wf.state.begin(step, frame, workflow.now())
    rec["status"], rec["durationMs"], rec["completedAt"] = "skipped", 0, rec["startedAt"]
    meta = new_meta() | {"skipped": True}
    frame.scope[step["id"]] = step_entry(None, meta)
    metrics.step_finished(step["kind"], "skipped")
    return Outcome(next=_route(wf, step, frame))


def _reused(wf: RunHost, step: WireStep, frame: Frame, entry: dict[str, Any]) -> Outcome:
    rec = wf.state.begin(step, frame, workflow.now())
    rec["status"], rec["reused"], rec["output"] = "completed", True, entry.get("output")
    rec["durationMs"], rec["completedAt"] = 0, rec["startedAt"]
    frame.scope[step["id"]] = step_entry(entry.get("output"), entry.get("meta") or new_meta())
    metrics.step_finished(step["kind"], "reused", attempts=0)
    return Outcome(next=_route(wf, step, frame))


def _run_limit_cap(wf: RunHost, step: WireStep, frame: Frame) -> int | None:
    limit = step.get("runLimit")
    if limit is None or int(limit) < 0:
        return None
    used = wf.state.run_counts.get(step["id"] + frame.suffix, 0)
    return int(limit) - used


async def _attempt(wf: RunHost, step: WireStep, frame: Frame, rec: StepRow,
                   block: dict[str, WireStep]) -> ErrorRecord | None:
    """Execute the step once (Temporal retries included); record it; return the error record or None."""
    key = step["id"] + frame.suffix
    cap = _run_limit_cap(wf, step, frame)
    started = workflow.now()
    result: dict[str, Any] = {}
    failure: StepFailure | None = None
    if cap is not None and cap <= 0:
        failure = StepFailure("RUN_LIMIT_REACHED", f"step '{step['id']}' has reached its run limit",
                              retryable=False, attempt=0)
    else:
        try:
            result = await _dispatch(wf, step, frame, rec, block, cap)
            if frame.iteration is None and step["kind"] != "core.set-variable":
                weigh_output(wf, step["id"], result.get("output"))
        except (ControlSignal, asyncio.CancelledError):
            raise
        except StepFailure as f:
            failure = f
        except Exception as exc:  # the step boundary: whatever step code raises is this step's failure
            failure = failure_from_exception(exc)
    if failure is not None:
        result = {"attempt": failure.attempt, "console": failure.console}
        if failure.capped and failure.exhausted and failure.retryable:
            failure = StepFailure("RUN_LIMIT_REACHED", f"step '{step['id']}' has reached its run limit",
                                  detail=f"last error: {failure.code}: {failure.message}", retryable=False,
                                  output=failure.output, attempt=failure.attempt)
    attempts = int(result.get("attempt") or 0)
    wf.state.run_counts[key] = wf.state.run_counts.get(key, 0) + attempts
    return finish(wf, step, frame, rec, result, failure, attempts, started)


def finish(wf: RunHost, step: WireStep, frame: Frame, rec: StepRow, result: dict[str, Any],
           failure: StepFailure | None, attempts: int, started: Any) -> ErrorRecord | None:
    """Record a step's result or failure in its row, ``$meta`` and the scope; return its error record."""
    now = workflow.now()
    meta = new_meta()
    meta["attempts"] = rec["attempts"] = attempts
    meta["durationMs"] = rec["durationMs"] = int((now - started).total_seconds() * 1000)
    rec["completedAt"] = now.isoformat()
    rec["console"] = result.get("console") or []
    warnings = result.get("warnings") or []
    err: ErrorRecord | None = None
    if failure is None:
        output = result.get("output")
        rec["status"] = "warning" if warnings else "completed"
        if warnings:
            meta["operationalStatus"] = "warning"
            meta["operationalErrors"] = warnings
    else:
        err = failure.record or error_record(
            step_id=step["id"], step_type=step["kind"], code=failure.code, message=failure.message,
            type=failure.type, provider_status=failure.provider_status, detail=failure.detail,
            retryable=bool(failure.retryable), attempt=max(1, attempts), iteration=frame.iteration)
        output = failure.output
        meta["success"] = False
        meta["operationalStatus"] = "error"
        if err["type"] == "operational":
            meta["operationalErrors"] = [err]
        else:
            meta["error"] = err
        rec["status"] = "failed"
        rec["error"] = err
    rec["output"] = hide_secret_nonce(output, frame.scope.get(SECRET_NONCE))
    rec["warnings"] = warnings
    for w in warnings:
        wf.state.add_error(w)
    frame.last_output = output
    frame.throttled += int(result.get("throttled") or 0)  # adaptive loops slow down on it
    frame.scope[step["id"]] = step_entry(output, meta)
    metrics.step_finished(step["kind"], rec["status"], err["code"] if err else None, attempts=attempts)
    return err


async def _dispatch(wf: RunHost, step: WireStep, frame: Frame, rec: StepRow,
                    block: dict[str, WireStep], cap: int | None) -> dict[str, Any]:
    kind = step["kind"]
    if kind in WORKFLOW_KINDS:
        return await WORKFLOW_KINDS[kind](wf, step, frame, rec, block)
    inp = render(step.get("input") or {}, frame.scope, strict=wf.strict())
    rec["input"] = hide_secret_nonce(inp, frame.scope.get(SECRET_NONCE))
    if kind in PURE:
        out = PURE[kind](inp, workflow.now())
        if kind == "core.set-variable" and isinstance(out, dict):
            weigh_vars(wf, out)  # judges the values too
            wf.vars.update(out)
        elif frame.iteration is not None:
            judge_output(out)  # (a top-level step's output is judged as the scope weighs it)
        return {"output": out, "attempt": 1}
    return await wf._activity(step, frame, inp, cap)  # a method: changed interpreters in tests override it

"""Steps that touch the outside world: one Temporal activity (or local activity) per step, whose type is the kind."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.exceptions import TimeoutError as TemporalTimeout

from flowtide.workflows.contracts import WireStep, activity_task, handed_back
from flowtide.workflows.engine._events import end_task, local_step_ended, local_step_starts
from flowtide.workflows.engine._flow_control import failure_from_activity
from flowtide.workflows.engine._state import Frame
from flowtide.workflows.engine._temporal_limits import check_payload
from flowtide.workflows.kinds import KINDS
from flowtide.workflows.language.templates import SECRET_NONCE
from flowtide.workflows.placement import auto_local
from flowtide.workflows.retry import effective, temporal_policy

if TYPE_CHECKING:
    from flowtide.workflows.engine._protocols import RunHost

TIMEOUT_SLACK_S = 10.0


async def run_activity(wf: RunHost, step: WireStep, frame: Frame, inp: dict[str, Any],
                       cap: int | None) -> dict[str, Any]:
    """Run ``step`` as its kind's activity (or local activity); a failure is raised as a ``StepFailure``."""
    kind = KINDS[step["kind"]]
    settings = effective(kind.family, step.get("retryPolicy"), wf.settings.get("retryPolicy"))
    on_error = step.get("onError") or wf.settings.get("onError") or {}
    if (on_error.get("maxRetries") and on_error.get("action") != "retry-workflow"
            and not step.get("retryPolicy") and workflow.patched("onerror-retries-are-the-budget")):
        # onError.maxRetries re-runs the step; without a retryPolicy of its own those runs are the whole
        # budget (1 + maxRetries calls), not maxRetries times the family's default Temporal retries
        settings = replace(settings, max_retries=0)
    timeout = float(step.get("timeout") or kind.default_timeout_s)
    if step["kind"] == "core.code":
        inp = dict(inp, **{"$context": code_context(wf, frame)})
    breaker = step.get("circuitBreaker") or wf.settings.get("circuitBreaker")
    project = wf.info.get("project")
    # a breaker is the run's project's own (store.breakers): the task names the project for it too
    scoped = bool(breaker and project and workflow.patched("breaker-per-project"))
    task = activity_task(kind.name, inp, step_id=step["id"], title=step.get("title"), timeout=timeout,
                         retry=settings.to_dict(), run_id=wf.info["runId"],
                         workflow_id=wf.info["workflowId"], iteration=frame.iteration,
                         limits=wf.settings.get("limits"), secret_nonce=frame.scope.get(SECRET_NONCE),
                         connection=step.get("connection"), project=project, breaker=breaker,
                         breaker_project=scoped, files_project=kind.files)
    check_payload(task, f"the input of step '{step['id']}'")
    policy = temporal_policy(settings, max_attempts_cap=cap)
    common: dict[str, Any] = {"start_to_close_timeout": timedelta(seconds=timeout + TIMEOUT_SLACK_S),
                              "retry_policy": policy, "summary": (step.get("title") or step["id"])[:200]}
    mode = step.get("execution") or wf.settings.get("execution")
    # unset (a flow parsed before settings.execution defaulted to None says "remote"): the rule decides;
    # runs recorded before the rule ran every such step remote
    local = mode == "local" or (mode is None and auto_local(kind.name, inp, timeout, settings,
                                                            heartbeats=frame.heartbeats)
                                and workflow.patched("auto-local-execution"))
    try:
        if local:
            common.pop("summary")
            return await _run_local(wf, kind.name, task, step["id"] + frame.suffix, common)
        return dict(await workflow.execute_activity(
            kind.name, task, activity_id=step["id"] + frame.suffix,
            heartbeat_timeout=timedelta(seconds=max(10.0, min(60.0, timeout))), **common))
    except (ActivityError, ApplicationError, CancelledError, TemporalTimeout) as err:
        # A local activity's failure may come without the ActivityError wrapper (see failure_from_activity)
        cause = err.cause if isinstance(err, ActivityError) else err
        if isinstance(cause, CancelledError):
            # only a cancellation of the run cancels a step's activity: end the run as cancelled
            raise asyncio.CancelledError(f"step '{step['id']}' cancelled with the run") from None
        failure = failure_from_activity(err, step, max_attempts=policy.maximum_attempts)
        failure.capped = cap is not None and cap < settings.max_retries + 1
        raise failure from None


async def _run_local(wf: RunHost, kind: str, task: Any, activity_id: str, common: dict[str, Any]) -> dict[str, Any]:
    """One local activity; when a stopping worker refused to start it (``WORKER_STOPPING``, recorded in its
    marker), end the workflow task with a 1 ms timer and start it again: the worker that runs the next task
    is one that is not stopping. Old histories hold no such refusal, so they replay as before."""
    for refused in itertools.count():
        local_step_starts(wf)
        try:
            return dict(await workflow.execute_local_activity(kind, task, activity_id=activity_id, **common))
        except (ActivityError, ApplicationError) as err:
            if not handed_back(err):
                raise
        finally:
            local_step_ended(wf)
        # 1 ms ends the task; should stopping workers keep getting the run, wait longer each time (up to 1 min)
        wait_ms = 1 if refused == 0 else min(60_000, 500 * 2 ** min(refused, 7))
        await end_task(wf, "the worker stopped: the step starts again", timedelta(milliseconds=wait_ms))
    raise AssertionError("unreachable")


def code_context(wf: RunHost, frame: Frame) -> dict[str, Any]:
    """What a code step sees besides its input: the trigger, vars, errors, step outputs, the loop item."""
    scope = frame.scope
    skip = {"initial", "vars", "$errors", "$run", "$item", "$index", SECRET_NONCE}
    return {"input": scope.get("initial"), "vars": wf.vars, "errors": wf.state.errors,
            "steps": {k: v for k, v in scope.items() if k not in skip},
            "item": scope.get("$item"), "index": scope.get("$index")}

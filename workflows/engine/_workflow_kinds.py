"""The control step kinds that run inside the workflow: if, return, delay, wait-for-signal, sub-flow, for-each."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError, CancelledError, ChildWorkflowError

from flowtide.workflows.contracts import RunFailure, StepRow, WireStep
from flowtide.workflows.engine._flow_control import ReturnNow
from flowtide.workflows.engine._state import Frame
from flowtide.workflows.engine._temporal_limits import check_payload, child_id, suffix_id
from flowtide.workflows.engine.loops import for_each as _loops
from flowtide.workflows.errors import StepFailure
from flowtide.workflows.kinds import FOR_EACH
from flowtide.workflows.language.conditions import evaluate
from flowtide.workflows.language.templates import SECRET_NONCE, hide_secret_nonce, render
from flowtide.workflows.limits import MAX_WAIT_S
from flowtide.workflows.search_attributes import FLOW_STATUS, WORKFLOW_TYPE

if TYPE_CHECKING:
    from flowtide.workflows.engine._protocols import RunHost



async def k_if(wf: RunHost, step: WireStep, frame: Frame, rec: StepRow,
               block: dict[str, WireStep]) -> dict[str, Any]:
    """``core.if``: run the branch the condition picks, in the same frame."""
    cond = (step.get("input") or {}).get("condition")
    hit = evaluate(cond, frame.scope, strict=wf.strict())
    branch = "then" if hit else "else"
    rec["input"] = {"condition": cond, "result": hit}
    await wf.run_block((step.get("blocks") or {}).get(branch) or [], frame)
    return {"output": {"result": hit, "branch": branch}, "attempt": 1}


async def k_return(wf: RunHost, step: WireStep, frame: Frame, rec: StepRow,
                   block: dict[str, WireStep]) -> dict[str, Any]:
    """``core.return``: set the run's output and end the run."""
    inp = render(step.get("input") or {}, frame.scope, strict=wf.strict())
    rec["input"] = hide_secret_nonce(inp, frame.scope.get(SECRET_NONCE))
    wf.state.output = inp.get("output")
    wf.state.webhook_response = inp.get("webhookResponse")
    wf.finish(step, frame, rec, {"output": inp.get("output"), "attempt": 1}, None, 1, workflow.now())
    raise ReturnNow()


async def k_delay(wf: RunHost, step: WireStep, frame: Frame, rec: StepRow,
                  block: dict[str, WireStep]) -> dict[str, Any]:
    """``core.delay``: a durable timer (``seconds`` or ``until``); the run shows ``waiting`` meanwhile."""
    inp = render(step.get("input") or {}, frame.scope, strict=wf.strict())
    rec["input"] = hide_secret_nonce(inp, frame.scope.get(SECRET_NONCE))
    seconds = _delay_seconds(inp, workflow.now())
    await _waiting(wf, "waiting", f"delay {seconds:g}s in step `{step['id']}`")
    await workflow.sleep(timedelta(seconds=seconds), summary=(step.get("title") or step["id"])[:200])
    await _waiting(wf, "running", None)
    return {"output": {"delayedSeconds": seconds}, "attempt": 1}


async def k_signal(wf: RunHost, step: WireStep, frame: Frame, rec: StepRow,
                   block: dict[str, WireStep]) -> dict[str, Any]:
    """``core.wait-for-signal``: wait (``timeout`` optional) for a signal this run or a parent relays."""
    inp = render(step.get("input") or {}, frame.scope, strict=wf.strict())
    rec["input"] = hide_secret_nonce(inp, frame.scope.get(SECRET_NONCE))
    name = str(inp.get("signal") or inp.get("name"))
    timeout = duration_seconds(inp["timeout"], "core.wait-for-signal 'timeout'") if inp.get("timeout") else None
    await wf.relay.wait_starts(name)
    workflow.set_current_details(f"waiting for signal `{name}` in step `{step['id']}`")
    try:
        await workflow.wait_condition(lambda: wf.relay.has(name),
                                      timeout=timedelta(seconds=timeout) if timeout else None,
                                      timeout_summary=f"{step['id']} signal timeout")
    except TimeoutError:
        await wf.relay.wait_ends(name)
        raise StepFailure("SIGNAL_TIMEOUT", f"no signal '{name}' arrived within {timeout:g}s",
                          retryable=False) from None
    await wf.relay.wait_ends(name)
    return {"output": {"signal": name, "data": wf.relay.take(name)}, "attempt": 1}


async def _waiting(wf: RunHost, status: str, details: str | None) -> None:
    wf.state.status = status
    workflow.upsert_search_attributes([FLOW_STATUS.value_set(status)])
    if details:
        workflow.set_current_details(details)


async def k_sub_flow(wf: RunHost, step: WireStep, frame: Frame, rec: StepRow,
                     block: dict[str, WireStep]) -> dict[str, Any]:
    """``core.sub-flow``: run the flow as a child run; its failure is this step's."""
    raw = step.get("input") or {}
    # The child flow's own templates are the child's: they read its input, never this run's scope.
    inp = render({k: v for k, v in raw.items() if k != "flow"}, frame.scope, strict=wf.strict())
    rec["input"] = hide_secret_nonce(inp, frame.scope.get(SECRET_NONCE))
    inp["flow"] = raw.get("flow")
    child = child_id(f"{wf.info['workflowId']}-{step['id']}{suffix_id(frame.suffix)}")
    arg: dict[str, Any] = {"flow": inp["flow"], "input": inp.get("input")}
    if wf.info.get("project"):  # the child's steps use the same project's connections
        arg["options"] = {"project": wf.info["project"]}
    check_payload(arg, f"the sub-flow of step '{step['id']}' with its input")
    try:
        result = await wf.relay.run_child(
            WORKFLOW_TYPE, arg, id=child,
            static_summary=f"sub-flow of {wf.info['workflowId']} step {step['id']}"[:200])
    except ChildWorkflowError as err:
        cause = err.cause
        if isinstance(cause, CancelledError):
            # the SDK cancels a child when its parent is cancelled: end this run as cancelled too
            raise asyncio.CancelledError(f"sub-flow of step '{step['id']}' cancelled with the run") from None
        ended = RunFailure.decode(cause.details) if isinstance(cause, ApplicationError) else None
        if ended is not None:
            failed = ended.record
            raise StepFailure(failed.get("code") or "SUB_FLOW_FAILED",
                              f"sub-flow {child} failed at step '{failed.get('stepId')}': "
                              f"{failed.get('message')}", provider_status=failed.get("providerStatus"),
                              detail=failed.get("detail"), retryable=False) from None
        raise StepFailure("SUB_FLOW_FAILED", f"sub-flow {child} failed: {cause}", retryable=False) from None
    return {"output": result.get("output") if isinstance(result, dict) else result, "attempt": 1}


async def k_for_each(wf: RunHost, step: WireStep, frame: Frame, rec: StepRow,
                     block: dict[str, WireStep]) -> dict[str, Any]:
    """``core.for-each``: see ``workflows.engine.loops.for_each``."""
    return await _loops.for_each(wf, step, frame, rec, block)


def _delay_seconds(inp: dict[str, Any], now: datetime) -> float:
    if inp.get("until"):
        try:
            until = datetime.fromisoformat(str(inp["until"]).replace("Z", "+00:00"))
        except ValueError:
            raise StepFailure("VALIDATION_ERROR", f"core.delay 'until' is not an ISO date: {inp['until']!r}",
                              retryable=False) from None
        if until.tzinfo is None:
            until = until.replace(tzinfo=now.tzinfo)
        return duration_seconds(max(0.0, (until - now).total_seconds()), "core.delay 'until'")
    return duration_seconds(inp.get("seconds") or 0, "core.delay 'seconds'")


def duration_seconds(value: Any, what: str) -> float:
    """A wait in seconds from step input: a finite number from 0 to ``MAX_WAIT_S`` (Temporal timers and
    ``timedelta`` refuse more; NaN would wait forever or crash)."""
    try:
        seconds = float(value)
    except (TypeError, ValueError, OverflowError):
        raise StepFailure("VALIDATION_ERROR", f"{what} is not a number: {str(value)[:80]!r}",
                          retryable=False) from None
    if not 0 <= seconds <= MAX_WAIT_S:  # also false for NaN
        raise StepFailure("VALIDATION_ERROR", f"{what} must be from 0 to {MAX_WAIT_S} seconds (100 years), "
                          f"got {str(value)[:80]}", retryable=False)
    return seconds


ControlKind = Callable[["RunHost", WireStep, Frame, StepRow, dict[str, WireStep]],
                       Awaitable[dict[str, Any]]]
WORKFLOW_KINDS: dict[str, ControlKind] = {
    "core.if": k_if,
    "core.return": k_return,
    "core.delay": k_delay,
    "core.wait-for-signal": k_signal,
    "core.sub-flow": k_sub_flow,
    FOR_EACH: k_for_each,
}

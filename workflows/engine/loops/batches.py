"""Big for-each loops in child runs, so that no history grows with the number of items.

    parent run --(one child)--> loop coordinator --(one after another)--> batch 0, batch 1, ...

- A batch child (workflow type ``FlowLoop``, role ``batch``) runs up to one batch of items with the loop's
  concurrency. It takes no new item once its history has ``HISTORY_BUDGET`` events and reports how many
  items it ran (always a prefix, at least one); the coordinator goes on from there.
- The coordinator (role ``loop``) keeps exact counts, the first ``MAX_KEPT_FAILURES`` failed items and
  error records, and continues as new when Temporal suggests it (4,096 events or 4 MiB by default) or past
  ``COORDINATOR_EVENTS`` events, carrying its tally: any number of items keeps every history bounded.
- Children get the flow without its steps, the loop body, and only the names of the scope that the body
  reads (a loop over 100,000 items must not copy a large trigger payload into thousands of histories).

A separate workflow type keeps loop parts out of ``WorkflowType = "FlowWorkflow"`` listings of runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError, CancelledError, ChildWorkflowError

from flowtide.workflows.contracts import WireStep
from flowtide.workflows.engine._state import Frame, RunState
from flowtide.workflows.engine._temporal_limits import check_payload, child_id, suffix_id
from flowtide.workflows.engine.loops.iterate import MAX_KEPT_FAILURES, Tally, history_length, iterate
from flowtide.workflows.errors import StepFailure
from flowtide.workflows.language.loop_policy import Control, FailurePolicy, Throttle
from flowtide.workflows.language.templates import SECRET_NONCE, references

if TYPE_CHECKING:
    from flowtide.workflows.engine._protocols import LoopHost

LOOP_WORKFLOW = "FlowLoop"
HISTORY_BUDGET = 8000  # a batch child takes no new item past this (in-flight items add at most ~1,600)
COORDINATOR_EVENTS = 3000  # each batch costs the coordinator 6 events; continue as new well before 10,240
ALWAYS_PASSED = ("$run", "vars", SECRET_NONCE)


def _var_roots(value: Any, out: set[str]) -> bool:
    """Roots read by JsonLogic ``var`` operations in ``value``; False when one is not a plain path."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if len(node) == 1 and "var" in node:
                arg = node["var"]
                path = arg[0] if isinstance(arg, list) and arg else arg
                if not isinstance(path, str) or "{{" in path:
                    return False
                out.add(path.split(".", 1)[0].split("[", 1)[0])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return True


def child_scope(body: list[WireStep], scope: dict[str, Any]) -> dict[str, Any]:
    """The part of ``scope`` the loop body can read (all of it when that cannot be told, e.g. code steps)."""
    if _uses_whole_scope(body):
        return {k: v for k, v in scope.items() if k != "$errors"}
    names = set(ALWAYS_PASSED) | references(body)
    if not _var_roots(body, names):
        return {k: v for k, v in scope.items() if k != "$errors"}
    return {k: v for k, v in scope.items() if k in names and k != "$errors"}


def _uses_whole_scope(steps: list[WireStep]) -> bool:
    for s in steps:
        if s.get("kind") == "core.code":  # a script sees every earlier step's output
            return True
        if any(_uses_whole_scope(b) for b in (s.get("blocks") or {}).values()):
            return True
    return False


def _encode_items(items: Sequence[Any]) -> dict[str, Any]:
    if isinstance(items, range):
        return {"range": [items.start, items.stop]}
    return {"items": list(items)}


def _decode_items(spec: dict[str, Any]) -> Sequence[Any]:
    if "range" in spec:
        lo, hi = spec["range"]
        return range(int(lo), int(hi))
    return list(spec["items"])


async def run_loop(wf: LoopHost, step: WireStep, frame: Frame, items: Sequence[Any], tally: Tally, *,
                   concurrency: int, coe: bool, batch: int, control: Control | None = None) -> None:
    """Parent side: run items ``tally.done..`` through one coordinator child; fold its counts into ``tally``."""
    body, start = _loop_body(wf, step)
    spec = {"role": "loop", "stepId": step["id"], "body": body, "start": start, "concurrency": concurrency,
            "continueOnError": coe, "batch": batch, "keepResults": tally.results is not None,
            "scope": child_scope(body, frame.scope), "suffix": frame.suffix, "offset": tally.done, "n": 0,
            "idPrefix": f"{wf.info['workflowId']}-{step['id']}{suffix_id(frame.suffix)}",
            "executions": wf.state.executions,  # settings.limits.maxStepExecutions counts for the whole run
            "project": wf.info.get("project"),  # whose connections the body's steps may use
            **_encode_items(items), **_control_spec(control, tally)}
    # Children need the settings, not the steps; a graph-style body is the whole graph (a nested graph loop
    # inside a batch looks its body up in the flow's steps again).
    flow = {k: v for k, v in wf.state.flow.items() if k != "steps"} | {"steps": body if start is not None else []}
    loop_id = child_id(f"{spec['idPrefix']}-loop")
    arg = {"flow": flow, "spec": spec}
    check_payload(arg, f"loop '{step['id']}' with its items and the data its body reads")
    try:
        res = await wf.relay.run_child(
            LOOP_WORKFLOW, arg, id=loop_id,
            static_summary=f"loop {step['id']}{frame.suffix}: items {tally.done}..{len(items) - 1}"[:200])
    except ChildWorkflowError as err:
        cause = err.cause
        if isinstance(cause, CancelledError):  # cancelled with the run: the run ends cancelled, not failed
            raise asyncio.CancelledError(f"loop '{step['id']}' cancelled with the run") from None
        msg = cause.message if isinstance(cause, ApplicationError) else str(cause)
        raise StepFailure("UNKNOWN_ERROR", f"loop {loop_id} failed: {msg}", retryable=False) from None
    merge(tally, res)
    _carry_back(wf, res)
    if res.get("ended") == "return":
        wf.state.output = res.get("output")
        wf.state.webhook_response = res.get("webhookResponse")


def _control_spec(control: Control | None, tally: Tally) -> dict[str, Any]:
    """The loop policies for the child runs (only when set: older loop specs stay as they were)."""
    if control is None:
        return {}
    out = {} if control.indexes is None else {"indexes": control.indexes}  # aligned with the items
    if control.policy is None and control.throttle is None:
        return out
    throttle = tally.throttle or (control.throttle.state() if control.throttle else None)
    return out | {"policy": control.policy.to_dict() if control.policy else None, "total": control.total,
                  "priorFailed": tally.failed, "throttle": throttle}


def _control(spec: dict[str, Any], prior_failed: int, throttle: dict[str, Any] | None) -> Control | None:
    """A batch's ``Control`` from its spec (None for loops without policies)."""
    if "total" not in spec:  # no policies; maybe a failed-items re-run
        return None if "indexes" not in spec else Control(indexes=list(spec["indexes"]))
    p = spec.get("policy")
    policy = FailurePolicy.from_dict(p) if p else None
    thr = None if throttle is None else Throttle.from_state(int(spec["concurrency"]), throttle)
    return Control(policy=policy, total=int(spec["total"]), prior_failed=prior_failed, throttle=thr,
                   indexes=spec.get("indexes"))


def _carry_back(wf: LoopHost, res: dict[str, Any]) -> None:
    """What the loop's child runs changed that the run goes on with, as an inline loop would have:
    ``vars`` set in the body and the step executions counted against ``maxStepExecutions``."""
    if isinstance(res.get("vars"), dict):
        wf.vars.update(res["vars"])
    if isinstance(res.get("executions"), int):
        wf.state.executions = max(wf.state.executions, res["executions"])


def _loop_body(wf: LoopHost, step: WireStep) -> tuple[list[WireStep], list[str] | None]:
    nested = (step.get("blocks") or {}).get("steps")
    if nested:
        return nested, None
    return list(wf.state.flow["steps"]), list(step.get("next") or [])  # graph style: the whole graph


def merge(tally: Tally, res: dict[str, Any]) -> None:
    """Add a child's counts, kept failures, kept errors and results to ``tally``."""
    tally.done += int(res["done"])
    tally.succeeded += int(res["succeeded"])
    tally.failed += int(res["failed"])
    tally.failures.extend(res["failures"][:max(0, MAX_KEPT_FAILURES - len(tally.failures))])
    room = max(0, MAX_KEPT_FAILURES - len(tally.errors))
    tally.errors.extend(res["errors"][:room])
    tally.errors_omitted += int(res.get("errorsOmitted") or 0) + max(0, len(res["errors"]) - room)
    if res.get("firstHalt") and tally.first_halt is None:
        tally.first_halt = res["firstHalt"]
    if tally.results is not None:
        tally.results = None if res.get("results") is None else tally.results + list(res["results"])
    if res.get("ended"):
        if tally.ended is None and res["ended"] == "budget":
            tally.first_halt = res.get("firstHalt") or tally.first_halt  # the record the run fails with
        tally.ended = tally.ended or res["ended"]
    for code, n in (res.get("byCode") or {}).items():
        tally.by_code[code] = tally.by_code.get(code, 0) + int(n)
    tally.threshold = tally.threshold or res.get("threshold")
    tally.throttle = res.get("throttle") or tally.throttle


def _result(tally: Tally, wf: LoopHost | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"done": tally.done, "succeeded": tally.succeeded, "failed": tally.failed,
                           "failures": tally.failures, "errors": tally.errors,
                           "errorsOmitted": tally.errors_omitted, "firstHalt": tally.first_halt,
                           "results": tally.results, "ended": tally.ended}
    if tally.by_code or tally.threshold or tally.throttle:  # loops with policies only (older results stay)
        out.update(byCode=tally.by_code, threshold=tally.threshold, throttle=tally.throttle)
    if wf is not None:
        out["vars"] = wf.vars
        out["executions"] = wf.state.executions
    if wf is not None and tally.ended == "return":
        out["output"] = wf.state.output
        out["webhookResponse"] = wf.state.webhook_response
    return out


def _setup(wf: LoopHost, flow: dict[str, Any], spec: dict[str, Any]) -> Frame:
    wf.settings = flow.get("settings") or {}
    wf.state = RunState(flow=flow, executions=int(spec.get("executions") or 0))
    info = workflow.info()
    wf.info = {"runId": info.run_id, "workflowId": info.workflow_id, "startedAt": info.start_time, "attempt": 1,
               "project": spec.get("project")}
    scope = dict(spec["scope"], **{"$errors": wf.state.errors})
    wf.vars = dict(scope.get("vars") or {})
    scope["vars"] = wf.vars
    return Frame(scope=scope, suffix=spec.get("suffix", ""))


async def run_child(wf: LoopHost, flow: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """Child side: the coordinator (role ``loop``) or one batch (role ``batch``)."""
    if spec.get("role") == "loop":
        return await _coordinate(wf, flow, spec)
    return await _run_batch(wf, flow, spec)


async def _coordinate(wf: LoopHost, flow: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """Run batches from ``spec["offset"]`` on; the result counts what this chain of runs did."""
    _setup(wf, flow, spec)
    items = _decode_items(spec)
    tally = Tally(count=len(items), results=[] if spec["keepResults"] else None)
    if spec.get("tally"):
        merge(tally, spec["tally"])  # carried over from the previous run of this chain
    offset, n, first_n = int(spec["offset"]), int(spec["n"]), int(spec["n"])
    coe = bool(spec["continueOnError"])
    while offset < len(items) and not tally.halted(coe) and tally.ended is None:
        if n > first_n and (workflow.info().is_continue_as_new_suggested() or history_length() > COORDINATOR_EVENTS):
            workflow.continue_as_new({"flow": flow, "spec": dict(
                spec, offset=offset, n=n, tally=_result(tally, wf), executions=wf.state.executions,
                scope=dict(spec["scope"], vars=wf.vars))})  # the tally carries the throttle state
        part = items[offset:offset + int(spec["batch"])]
        workflow.set_current_details(f"loop `{spec['stepId']}`: {offset} / {len(items)} items done, "
                                     f"{tally.succeeded} succeeded, {tally.failed} failed")
        scope = dict(spec["scope"], vars=wf.vars)  # a batch starts from the vars the previous ones left
        child = {k: spec[k] for k in ("stepId", "body", "start", "concurrency", "continueOnError", "suffix",
                                      "keepResults")} | {"role": "batch", "offset": offset, "scope": scope,
                                                         "executions": wf.state.executions,
                                                         "project": spec.get("project")}
        if "indexes" in spec:  # a failed-items re-run: the loop indexes of this batch's items
            child["indexes"] = spec["indexes"][offset:offset + len(part)]
        if "total" in spec:  # failure policy counts and concurrency carry across batches
            child |= {k: spec[k] for k in ("policy", "total")} | {
                "priorFailed": int(spec["priorFailed"]) + tally.failed, "throttle": tally.throttle or spec["throttle"]}
        try:
            res = await wf.relay.run_child(
                LOOP_WORKFLOW, {"flow": flow, "spec": child | _encode_items(part)},
                id=child_id(f"{spec['idPrefix']}-b{n}"),
                static_summary=f"loop {spec['stepId']}: items {offset}..{offset + len(part) - 1}"[:200])
        except ChildWorkflowError as err:
            if isinstance(err.cause, CancelledError):  # cancelled with the run: so is this chain
                raise asyncio.CancelledError(f"loop '{spec['stepId']}' cancelled with the run") from None
            raise
        merge(tally, res)
        _carry_back(wf, res)
        if res.get("ended") == "return":
            wf.state.output, wf.state.webhook_response = res.get("output"), res.get("webhookResponse")
        offset += int(res["done"])
        n += 1
    return _result(tally, wf)


async def _run_batch(wf: LoopHost, flow: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    frame = _setup(wf, flow, spec)
    tally = await iterate(wf, spec["body"], spec.get("start"), frame, _decode_items(spec), spec["offset"],
                          spec["concurrency"], bool(spec["continueOnError"]), keep_results=spec["keepResults"],
                          budget=HISTORY_BUDGET,
                          control=_control(spec, int(spec.get("priorFailed") or 0), spec.get("throttle")))
    errors = wf.state.errors
    tally.errors = errors[:MAX_KEPT_FAILURES]
    tally.errors_omitted = max(0, len(errors) - MAX_KEPT_FAILURES)
    return _result(tally, wf)

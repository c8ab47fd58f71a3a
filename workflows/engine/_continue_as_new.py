"""The main run of a flow continues as new between top-level steps, carrying all the rest of the run can read.

A run's history grows with every step; Temporal terminates a run at 51,200 events. Between two steps of the
flow's top-level block (never inside a branch, a loop or a retry), once Temporal suggests it or the history
has ``settings.limits.continueAsNewEvents`` events, the run continues as new with ``options.resume``: the
position (list style: the index; graph style: the queue and the stop-workflow state), ``vars``, every step's
output and ``$meta``, ``$errors``, run counts (``runLimit``) and step executions, loop summaries, signals not
consumed yet, the workflow-retry attempt, the rerun options, the secret nonce, the run id and start time the
flow sees (``$run``), and the newest step rows of the record (older rows become counts). Nothing the flow
can observe changes at the boundary; users see one run (``client.inspect`` follows the chain).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from temporalio import workflow

from flowtide.workflows import limits
from flowtide.workflows.engine._events import history_events
from flowtide.workflows.engine._state import TERMINAL_STEP_STATUSES, Frame, json_size, step_entry
from flowtide.workflows.engine._temporal_limits import MAX_COMMAND_PAYLOAD_BYTES
from flowtide.workflows.errors import Problem
from flowtide.workflows.language.templates import SECRET_NONCE
from flowtide.workflows.search_attributes import MEMO_FIRST_RUN

if TYPE_CHECKING:
    from flowtide.workflows.engine._protocols import RunHost

VERSION = 1
ROWS_BUDGET_BYTES = 400_000  # step rows carried to the next run; older ones are summarised as counts
MAX_ROWS = 2_000
SCOPE_FIXED = frozenset({"initial", "vars", "$errors", "$run", SECRET_NONCE})
PATCH = "main-run-continues-as-new"


@dataclass
class Position:
    """Where the top-level block goes on: the next index (list style) or the queue (graph style)."""

    index: int = 0
    queue: list[str] | None = None
    stopping: bool = False
    steps: dict[str, Any] = field(default_factory=dict)  # restored step outputs: {stepId: {output, meta}}

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index} if self.queue is None else {"queue": self.queue, "stopping": self.stopping}


class Chain:
    """Decides, between top-level steps, whether this run continues as new, and does it."""

    def __init__(self) -> None:
        self.started = 0  # top-level steps started in this run: the first always runs (every run progresses)
        self.blocked = False  # the carried state does not fit one payload: this run goes on without chaining

    def step(self, wf: RunHost, frame: Frame, at: Position) -> None:
        """Called before each top-level step; raises ``ContinueAsNewError`` when the run continues as new."""
        self.started += 1
        if self.started == 1 or self.blocked or not _due(wf):
            return
        if not workflow.patched(PATCH):  # a history recorded before chaining existed never continued here
            self.blocked = True
            return
        arg = _argument(wf, frame, at)
        if json_size(arg) > MAX_COMMAND_PAYLOAD_BYTES:
            wf.state.summarise_rows(0)  # the rows are the record's, not the flow's: they go first
            arg = _argument(wf, frame, at)
        if json_size(arg) > MAX_COMMAND_PAYLOAD_BYTES:
            workflow.logger.warning("the run's state is too large to continue as new; it goes on in this run")
            self.blocked = True
            return
        # the memo names the first run, so that `runs list` can show the chain as the run its record names
        memo = dict(workflow.memo()) | {MEMO_FIRST_RUN: wf.info["runId"]}
        workflow.continue_as_new(arg, memo=memo, search_attributes=workflow.info().typed_search_attributes)


def _argument(wf: RunHost, frame: Frame, at: Position) -> dict[str, Any]:
    return {"flow": wf.state.flow, "input": frame.scope.get("initial"), "options": {"resume": carry(wf, frame, at)}
            | ({"project": wf.info["project"]} if wf.info.get("project") else {})}


def _due(wf: RunHost) -> bool:
    limit = limits.limit(wf.settings, "continueAsNewEvents")
    return workflow.info().is_continue_as_new_suggested() or history_events(wf) >= limit


def carry(wf: RunHost, frame: Frame, at: Position) -> dict[str, Any]:
    """``options.resume`` for the next run (see the module docstring); fold old step rows into counts first."""
    state = wf.state
    _trim_rows(wf)
    steps = {k: {"output": v.get("output"), "meta": v.get("$meta")} for k, v in frame.scope.items()
             if k not in SCOPE_FIXED and isinstance(v, dict)}
    return {"v": VERSION, "runId": wf.info["runId"], "startedAt": wf.info["startedAt"].isoformat(),
            "secretNonce": wf.info["secretNonce"], "attempt": wf.info["attempt"], "rerunOf": wf.info["rerunOf"],
            "workflowRetries": wf.workflow_retries, "runs": int(state.chain.get("runs") or 1),
            "vars": wf.vars, "steps": steps, "errors": state.errors, "firstFailed": state.first_failed,
            "runCounts": state.run_counts, "executions": state.executions, "loops": state.loops,
            "rows": state.steps, "earlier": state.earlier, "reuse": wf.reuse,
            "signals": {name: list(q) for name, q in wf.relay.queues.items() if q}, "at": at.to_dict()}


def _trim_rows(wf: RunHost) -> None:
    rows, used, keep = wf.state.steps, 0, 0
    for row in reversed(rows[-MAX_ROWS:]):
        used += json_size(row)
        if used > ROWS_BUDGET_BYTES:
            break
        keep += 1
    wf.state.summarise_rows(keep)


def restore(wf: RunHost, resume: dict[str, Any]) -> Position:
    """Put the carried state in place (before the run's scope is built); return where the block goes on."""
    info = workflow.info()
    wf.info.update(runId=resume["runId"], startedAt=datetime.fromisoformat(resume["startedAt"]),
                   secretNonce=resume["secretNonce"], attempt=resume["attempt"], rerunOf=resume["rerunOf"])
    wf.workflow_retries = resume["workflowRetries"]
    wf.vars = dict(resume["vars"])
    wf.reuse = dict(resume["reuse"])
    state = wf.state
    state.errors, state.first_failed = list(resume["errors"]), resume["firstFailed"]
    state.run_counts, state.executions = dict(resume["runCounts"]), resume["executions"]
    state.loops, state.steps, state.earlier = dict(resume["loops"]), list(resume["rows"]), dict(resume["earlier"])
    state.chain = {"runs": resume["runs"] + 1, "currentRunId": info.run_id}
    for name, items in resume["signals"].items():
        wf.relay.queues[name] = deque(items)
    at = resume["at"]
    return Position(index=int(at.get("index") or 0), queue=at.get("queue"), stopping=bool(at.get("stopping")),
                    steps=resume["steps"])


def fill_scope(scope: dict[str, Any], at: Position) -> None:
    """The carried step outputs, as ``{{ step-id... }}`` reads them."""
    for sid, entry in at.steps.items():
        scope[sid] = step_entry(entry.get("output"), dict(entry.get("meta") or {}))


# ---- checking options.resume (any client may send anything) -------------------------------------------
_TYPES: dict[str, tuple[type, ...]] = {
    "runId": (str,), "startedAt": (str,), "secretNonce": (str,), "attempt": (int,), "rerunOf": (str, type(None)),
    "workflowRetries": (int,), "runs": (int,), "vars": (dict,), "steps": (dict,), "errors": (list,),
    "firstFailed": (str, type(None)), "runCounts": (dict,), "executions": (int,), "loops": (dict,),
    "rows": (list,), "earlier": (dict,), "reuse": (dict,), "signals": (dict,), "at": (dict,)}


def check_resume(resume: Any, flow: dict[str, Any]) -> list[Problem]:
    """What is wrong with ``options.resume`` for ``flow`` (the wire form); empty when it can be used."""
    where = "options.resume"
    if not isinstance(resume, dict) or resume.get("v") != VERSION:
        return [Problem(where, f"must be an object with v = {VERSION} (the state a continued run carries)")]
    problems = [Problem(f"{where}.{k}", f"must be {' or '.join(t.__name__ for t in types)}")
                for k, types in _TYPES.items() if not isinstance(resume.get(k), types)
                or (types == (int,) and (isinstance(resume.get(k), bool) or resume[k] < 0))]
    if problems:
        return problems
    if json_size(resume) > MAX_COMMAND_PAYLOAD_BYTES:
        return [Problem(where, f"is over {MAX_COMMAND_PAYLOAD_BYTES} bytes")]
    try:
        aware = datetime.fromisoformat(resume["startedAt"]).tzinfo is not None
    except ValueError:
        aware = False
    if not aware:
        problems.append(Problem(f"{where}.startedAt", "must be an ISO date and time with its UTC offset"))
    problems += _check_parts(resume, flow)
    return problems


def _check_parts(resume: dict[str, Any], flow: dict[str, Any]) -> list[Problem]:
    where, out = "options.resume", []
    ids = [s["id"] for s in flow.get("steps") or []]
    at = resume["at"]
    queue, index = at.get("queue"), at.get("index", 0)
    if queue is not None and not (isinstance(queue, list) and all(q in ids for q in queue)):
        out.append(Problem(f"{where}.at.queue", "must be a list of ids of the flow's top-level steps"))
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index <= len(ids):
        out.append(Problem(f"{where}.at.index", f"must be a whole number from 0 to {len(ids)}"))
    if not all(isinstance(e, dict) and isinstance(e.get("meta"), dict) for e in resume["steps"].values()):
        out.append(Problem(f"{where}.steps", "must map step ids to {output, meta}"))
    if not all(isinstance(r, dict) and isinstance(r.get("stepId"), str) and r.get("status") in
               TERMINAL_STEP_STATUSES for r in resume["rows"]):
        out.append(Problem(f"{where}.rows", "must be finished step rows"))
    if not all(isinstance(e, dict) for e in resume["errors"]):
        out.append(Problem(f"{where}.errors", "must be a list of error records"))
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in resume["runCounts"].values()):
        out.append(Problem(f"{where}.runCounts", "must map step ids to counts"))
    if not all(isinstance(v, list) for v in resume["signals"].values()):
        out.append(Problem(f"{where}.signals", "must map signal names to lists of payloads"))
    if not all(isinstance(v, dict) for v in resume["reuse"].values()):
        out.append(Problem(f"{where}.reuse", "must map step ids to {output, meta}"))
    # the record counts with these: a wrong type would fail every query and the run's last status update
    if not all(isinstance(v, dict) and all(_count(v.get(k, 0)) for k in ("succeeded", "failed"))
               for v in resume["loops"].values()):
        out.append(Problem(f"{where}.loops", "must map loop steps to their counts"))
    earlier = resume["earlier"]
    if earlier and not (_count(earlier.get("rows")) and isinstance(earlier.get("counts"), dict)
                        and all(_count(n) for n in earlier["counts"].values())
                        and isinstance(earlier.get("done"), list) and all(isinstance(d, str) for d in earlier["done"])):
        out.append(Problem(f"{where}.earlier", "must be {rows, counts, done}"))
    return out


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0

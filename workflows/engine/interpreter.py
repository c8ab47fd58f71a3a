"""The one generic Temporal workflow that interprets a flow (the canonical wire dict of ``workflows.language.dsl``).

The run, its blocks and the run record live here; one step's run (retries, onError, routing) in ``_steps``,
pure step kinds in ``language.pure``, control kinds (if, delay, sub-flow, ...) in ``_control_kinds``, step activities
in ``_remote``, continuing as new in ``_chain``. Deterministic, no I/O.

Workflow input: ``{"flow": <the document, either spelling, or the wire form>, "input": <payload>,
"options": {"reuse": {stepId: entry}, "rerunOf": runId, "resume": <a continued run's state>}}``, checked
by ``_accept``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.workflow import NondeterminismError

with workflow.unsafe.imports_passed_through():
    from flowtide.workflows.contracts import (
        ErrorRecord,
        RunFailure,
        RunRecord,
        StepRow,
        WireStep,
        error_record,
    )
    from flowtide.workflows.engine import _continue_as_new, _remote, _steps, _weigh
    from flowtide.workflows.engine._argument import accept_as_recorded, check_input, problem_list
    from flowtide.workflows.engine._flow_control import Halt, Outcome, RetryWorkflow, ReturnNow, StopFlow
    from flowtide.workflows.engine._signals import CHILD_STATUS, Relay
    from flowtide.workflows.engine._state import Frame, RunState
    from flowtide.workflows.errors import (
        FlowtideError,
        FlowValidationError,
        LimitError,
        StepFailure,
        TemplateError,
        wire_text,
    )
    from flowtide.workflows.language.json_values import json_problem
    from flowtide.workflows.language.templates import SECRET_NONCE
    from flowtide.workflows.language.work import Work
    from flowtide.workflows.language.work import bind as bind_work
    from flowtide.workflows.search_attributes import (
        ERROR_CODE,
        FAILED_STEP,
        FLOW_ID,
        FLOW_STATUS,
        FLOW_VERSION,
        PROJECT_ID,
        WORKFLOW_TYPE,
    )


# Exceptions that fail the run rather than the workflow task (which Temporal would retry forever, leaving the
# run in Running). ``run`` already turns any exception into INTERNAL_ERROR; this also covers signal handlers.
# NondeterminismError is deliberately absent: after a bad deploy, runs wait for a fixed worker.
FAILURE_TYPES: tuple[type[BaseException], ...] = (
    FlowtideError, ArithmeticError, LookupError, RecursionError, TypeError, ValueError, AttributeError)


@workflow.defn(name=WORKFLOW_TYPE, failure_exception_types=FAILURE_TYPES, sandboxed=False)
class FlowWorkflow:
    """Interprets one flow run. Queries: ``record``. Signals: any name (for ``core.wait-for-signal``); the names the
    flow's steps wait for get named handlers as the run starts (``_declare_signals``)."""

    def __init__(self) -> None:
        self.state = RunState(flow={})
        self.relay = Relay(self._publish_paused)
        self.vars: dict[str, Any] = {}
        self.settings: dict[str, Any] = {}
        self.info: dict[str, Any] = {}
        self.workflow_retries = 0
        self.reuse: dict[str, Any] = {}
        self.task_steps: tuple[datetime | None, int] = (None, 0)  # (time of the current task, steps in it)
        self.local_steps = -1  # local steps since the run last ended a task on purpose; -1: none yet (_events)
        self.chain = _continue_as_new.Chain()
        # the run's work meter (templates, conditions): its caps apply from the patch on, see _weigh.bounded
        self.work = Work(_weigh.bounded, _weigh.schema_bounded)
        # the scope's variables and kept outputs: (the variable's value, its JSON size), see _weigh
        self.scope_sizes: dict[str, tuple[Any, int]] = {}
        self.scope_bytes = 0

    # ---- Temporal handlers -------------------------------------------------------------------
    @workflow.run
    async def run(self, params: Any) -> RunRecord:
        """Check the argument (any client may send anything), run the flow, return its run record.

        Every way out is a closed run: completed, failed with a code (``VALIDATION_ERROR`` for a bad
        argument, ``INTERNAL_ERROR`` for a bug of ours), or cancelled. No exception is left to fail the
        workflow *task*, which Temporal would retry forever with the run stuck in Running.
        """
        self._setup(params.get("options") if isinstance(params, dict) else None)
        bind_work(self.work)  # this task and the loop lanes it starts charge the run's meter
        try:
            try:
                flow, payload, options = accept_as_recorded(params)
                check_input(payload, _weigh.bounded)
            except FlowValidationError as err:
                rec = error_record(step_id=None, step_type=None, code="VALIDATION_ERROR",
                                   message=f"the flow or its input is invalid: {err}")
                rec["problems"] = problem_list(err)
                return await self._fail_run(rec)
            self.settings = flow.get("settings") or {}
            self.state = RunState(flow=flow, total_steps=_count_steps(flow["steps"]))
            _tag_run(flow)
            self._declare_signals(flow["steps"])
            return await self._run_with_restarts(flow, payload, options)
        except asyncio.CancelledError:
            self.state.status = "cancelled"
            self.state.close_open_rows(workflow.now(), "cancelled", "cancelled")
            await self._publish_status()
            raise
        except (FailureError, NondeterminismError):
            raise  # the run's own failure; or a bad deploy, which must wait for a fixed worker, not fail runs
        except Exception as exc:  # a bug of ours: fail the run with its name instead of hanging the task
            workflow.logger.exception("flow interpreter bug")
            rec = error_record(step_id=None, step_type=None, code="INTERNAL_ERROR",
                               message=f"{type(exc).__name__}: {str(exc)[:500]}")
            return await self._fail_run(rec)

    @workflow.query
    def record(self) -> RunRecord:
        """The live run record."""
        return self.state.record(self.info, workflow.now())

    @workflow.signal(dynamic=True)
    async def on_signal(self, name: str, args: Sequence[RawValue]) -> None:
        try:
            data = workflow.payload_converter().from_payload(args[0].payload) if args else None
        except Exception as exc:  # a payload this worker cannot decode: drop it, never fail the workflow task
            workflow.logger.warning("signal %r dropped: its payload cannot be decoded (%s)", name[:100], exc)
            return
        await self._accept_signal(name, data)

    def _declare_signals(self, steps: list[WireStep]) -> None:
        """A named handler for each signal name the flow's own steps wait for (a literal name, not a template),
        so ``temporal workflow metadata`` and the Web UI list them. They do what the dynamic handler does;
        registering one issues no command (other names still reach ``on_signal``)."""
        for name in _signal_names(steps):
            workflow.set_signal_handler(name, self._named_handler(name))

    def _named_handler(self, name: str) -> Any:
        async def handler(*args: Any) -> None:  # decoded without type hints; an undecodable one the SDK drops
            await self._accept_signal(name, args[0] if args else None)
        return handler

    async def _accept_signal(self, name: str, data: Any) -> None:
        problem = json_problem(data, "data")
        if problem is not None and _weigh.bounded():  # NaN, Infinity...: never enters the run
            workflow.logger.warning("signal %r dropped: its data is not plain JSON (%s)", name[:100], problem)
            return
        await self.relay.deliver(name, data)

    # ---- run ----------------------------------------------------------------------------------
    def _setup(self, options: Any) -> None:
        info = workflow.info()
        options = options if isinstance(options, dict) else {}
        rerun_of, project = options.get("rerunOf"), options.get("project")
        self.info = {"runId": info.run_id, "workflowId": info.workflow_id, "startedAt": info.start_time,
                     "attempt": 1, "rerunOf": rerun_of if isinstance(rerun_of, str) else None,
                     # whose connections the steps may use: the service's ProjectId, handed on to child runs
                     "project": project if isinstance(project, str) else
                     info.typed_search_attributes.get(PROJECT_ID),
                     # deterministic (seeded by Temporal), unknown to any data: see workflows.language.templates
                     "secretNonce": f"{workflow.random().getrandbits(64):016x}"}

    def _scope(self, payload: Any) -> dict[str, Any]:
        flow = self.state.flow
        return {"initial": payload, "vars": self.vars, "$errors": self.state.errors,
                SECRET_NONCE: self.info["secretNonce"],
                "$run": {"id": self.info["runId"], "workflowId": self.info["workflowId"],
                         "flowId": flow.get("id"), "flowVersion": flow.get("version", 1),
                         "startedAt": self.info["startedAt"].isoformat(), "attempt": self.info["attempt"]}}

    async def _run_with_restarts(self, flow: dict[str, Any], payload: Any, options: dict[str, Any]
                                 ) -> RunRecord:
        self.reuse = dict(options.get("reuse") or {})
        at = _continue_as_new.restore(self, options["resume"]) if options.get("resume") else _continue_as_new.Position()
        while True:
            frame = Frame(scope=self._scope(payload))
            _continue_as_new.fill_scope(frame.scope, at)
            try:
                await self.run_block(flow["steps"], frame, at=at)
                self.state.status = "completed_with_errors" if self.state.errors else "completed"
                break
            except (ReturnNow, StopFlow):
                self.state.status = "completed_with_errors" if self.state.errors else "completed"
                break
            except RetryWorkflow:
                self.workflow_retries += 1
                self.info["attempt"] = self.workflow_retries + 1
                self.vars = {}
                self.scope_sizes, self.scope_bytes = {}, 0
                self.state = RunState(flow=flow, total_steps=self.state.total_steps, chain=self.state.chain)
                self.reuse = {}
                at = _continue_as_new.Position()
                continue
            except Halt as halt:
                self.state.close_open_rows(workflow.now(), "cancelled", blocks="failed")
                return await self._fail(halt.record)
            except TemplateError as exc:
                code = exc.code if isinstance(exc, LimitError) else "TEMPLATE_ERROR"
                return await self._fail_run(error_record(step_id=None, step_type=None, code=code,
                                                         message=str(exc)))
        self.state.close_open_rows(workflow.now(), "cancelled", blocks="completed")  # a return or stop inside a block
        await self._publish_status()
        return self.record()

    async def _fail_run(self, rec: ErrorRecord) -> RunRecord:
        """Fail the run with an error that belongs to no step."""
        self.state.run_error = rec
        self.state.add_error(rec)
        return await self._fail(rec)

    async def _fail(self, rec: ErrorRecord) -> RunRecord:
        self.state.status = "failed"
        await self._publish_status(rec)
        raise ApplicationError(wire_text(_failure_message(rec)), *RunFailure(rec, self.record()).encode(),
                               type=rec["code"], non_retryable=True) from None

    async def _publish_status(self, rec: ErrorRecord | None = None) -> None:
        updates = [FLOW_STATUS.value_set(self.state.status)]
        if rec is not None:
            updates.append(ERROR_CODE.value_set(rec["code"]))
            if step_id := rec.get("stepId"):
                updates.append(FAILED_STEP.value_set(step_id))
        workflow.upsert_search_attributes(updates)
        done = self.state.progress()
        workflow.set_current_details(f"**{self.state.status}** — {done['done']} / {done['total']} steps")

    # ---- blocks -------------------------------------------------------------------------------
    async def run_block(self, steps: list[WireStep], frame: Frame, *, start: list[str] | None = None,
                        at: _continue_as_new.Position | None = None) -> None:
        """Run a list of steps: in list order, or as a graph when any step has ``next``/``condition``.

        ``at``: this is the flow's top-level block, from that position; between its steps the run may
        continue as new (``workflows.engine._continue_as_new``).
        """
        by_id = {s["id"]: s for s in steps}
        graph = start is not None or any(s.get("next") or s.get("condition") for s in steps)
        if not graph:
            i = at.index if at is not None else 0
            while i < len(steps):
                if at is not None:
                    self.chain.step(self, frame, _continue_as_new.Position(index=i))
                out = await self.exec_step(steps[i], frame, by_id)
                if out.goto is not None:
                    i = next((k for k, s in enumerate(steps) if s["id"] == out.goto), len(steps))
                else:
                    i += 1
            return
        queue: deque[str] = deque(start if start is not None else [steps[0]["id"]])
        stopping = False  # a stop-workflow word is pending: the steps listed before it run, then the run ends
        if at is not None and at.queue is not None:
            queue, stopping = deque(at.queue), at.stopping
        while queue:
            if at is not None:
                self.chain.step(self, frame, _continue_as_new.Position(queue=list(queue), stopping=stopping))
            out = await self.exec_step(by_id[queue.popleft()], frame, by_id)
            if stopping:
                if not queue:
                    raise StopFlow()
                continue
            targets = [t for t in out.next if t != "continue-workflow"]
            if "stop-workflow" in targets:
                # seed 004: `then: [send-alert, stop-workflow]` sends the alert, then stops; the word clears
                # the queue, and the steps after it in the same list never run
                queue = deque(targets[:targets.index("stop-workflow")])
                if not queue:
                    raise StopFlow()
                stopping = True
                continue
            queue.extend(targets)

    # ---- one step (workflows.engine._steps) ----------------------------------------------------------
    async def exec_step(self, step: WireStep, frame: Frame, block: dict[str, WireStep]) -> Outcome:
        """Run one step with skip, runLimit, retries, onError and routing; return where to go next."""
        return await _steps.exec_step(self, step, frame, block)

    def finish(self, step: WireStep, frame: Frame, rec: StepRow, result: dict[str, Any],
               failure: StepFailure | None, attempts: int, started: Any) -> ErrorRecord | None:
        """Record a step's result or failure in its row, ``$meta`` and the scope; return its error record."""
        return _steps.finish(self, step, frame, rec, result, failure, attempts, started)

    def strict(self) -> bool:
        """Whether a template reading a missing path is an error (``settings.strictTemplates``)."""
        return bool(self.settings.get("strictTemplates"))

    async def _activity(self, step: WireStep, frame: Frame, inp: dict[str, Any], cap: int | None
                        ) -> dict[str, Any]:
        # a method (not a call of _remote's from _steps), so that a changed interpreter can override it
        return await _remote.run_activity(self, step, frame, inp, cap)

    def _publish_paused(self, paused: bool) -> None:
        """This run, or a child run of it, waits for a signal (``paused``), or no longer does."""
        self.state.status = "paused" if paused else "running"
        workflow.upsert_search_attributes([FLOW_STATUS.value_set(self.state.status)])


def _tag_run(flow: dict[str, Any]) -> None:
    """A run started by another client (Go, TypeScript, ``temporal workflow start``) carries no search
    attributes: set the flow's, so ``runs list`` and the Web UI's queries find it like any other run."""
    info = workflow.info()
    if info.parent is None and info.typed_search_attributes.get(FLOW_ID) is None and workflow.patched("tag-run"):
        workflow.upsert_search_attributes([FLOW_ID.value_set(str(flow["id"])),
                                           FLOW_VERSION.value_set(int(flow.get("version") or 1)),
                                           FLOW_STATUS.value_set("running")])


def _failure_message(rec: ErrorRecord) -> str:
    """The run's failure message: the step and the message. The code is the failure's type, and the SDK's
    ``str()`` puts it in front (``HTTP_ERROR: step 'x' failed: ...``); runs recorded before the patch named
    it in the message too."""
    code = "" if workflow.patched("failure-names-code-once") else f"{rec['code']}: "
    where = f"step '{rec['stepId']}' failed: " if rec.get("stepId") else ""
    return f"{where}{code}{rec['message']}"


def _signal_names(steps: Any) -> list[str]:
    """The literal signal names the ``core.wait-for-signal`` steps of ``steps`` wait for: in their blocks (branches,
    loop bodies) and in inline sub-flows too, whose child runs get the signals this run relays to them."""
    names: list[str] = []
    for s in steps if isinstance(steps, list) else ():
        if not isinstance(s, dict):
            continue  # an inline sub-flow is checked when its child run starts, not here
        inp: dict[str, Any] = s["input"] if isinstance(s.get("input"), dict) else {}
        name = inp.get("signal") or inp.get("name")
        if s.get("kind") == "core.wait-for-signal" and isinstance(name, str) and "{{" not in name \
                and name != CHILD_STATUS:
            names.append(name)
        nested = list((s.get("blocks") or {}).values())
        if s.get("kind") == "core.sub-flow" and isinstance(inp.get("flow"), dict):
            nested.append(inp["flow"].get("steps"))
        for sub in nested:
            names += _signal_names(sub)
    return list(dict.fromkeys(names))


def _count_steps(steps: list[WireStep]) -> int:
    n = 0
    for s in steps:
        n += 1
        for sub in (s.get("blocks") or {}).values():
            n += _count_steps(sub)
    return n

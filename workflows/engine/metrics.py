"""Flowtide's workflow-side metrics, through ``workflow.metric_meter()`` (records nothing while replaying).

Names and labels (docs/operations.md, "Metrics"):

- ``flowtide_runs_total{flow, status}``: runs that ended, by flow id and final status;
- ``flowtide_steps_total{kind, status}``: steps that finished (completed, warning, failed, skipped, reused);
- ``flowtide_step_failures_total{kind, code, class}``: failed steps by error code and class;
- ``flowtide_step_retries_total{kind}``: attempts beyond the first of finished steps;
- ``flowtide_loop_items_total{kind}``: items a loop step went through.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError, CancelledError, TimeoutError
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from flowtide.workflows.errors import classify
from flowtide.workflows.search_attributes import WORKFLOW_TYPE

RUNS = "flowtide_runs_total"
STEPS = "flowtide_steps_total"
STEP_FAILURES = "flowtide_step_failures_total"
STEP_RETRIES = "flowtide_step_retries_total"
LOOP_ITEMS = "flowtide_loop_items_total"
_HELP = {RUNS: "Flowtide runs that ended, by flow and status",
         STEPS: "Flowtide steps that finished, by kind and status",
         STEP_FAILURES: "Flowtide steps that failed, by kind, error code and error class",
         STEP_RETRIES: "Attempts beyond the first of finished Flowtide steps, by kind",
         LOOP_ITEMS: "Items Flowtide loop steps went through, by kind"}


def _add(name: str, value: int, labels: dict[str, str]) -> None:
    if value > 0:
        workflow.metric_meter().create_counter(name, _HELP[name]).add(value, labels)


def step_finished(kind: str, status: str, code: str | None = None, cls: str | None = None,
                  attempts: int = 1) -> None:
    """Count one finished step; a failed one also by ``code`` and ``cls`` (its class from the taxonomy if unset)."""
    _add(STEPS, 1, {"kind": kind, "status": status})
    if code:
        _add(STEP_FAILURES, 1, {"kind": kind, "code": code, "class": cls or classify(code)})
    _add(STEP_RETRIES, attempts - 1, {"kind": kind})


def loop_items(kind: str, count: int) -> None:
    """Count ``count`` loop items gone through by a ``kind`` step."""
    _add(LOOP_ITEMS, count, {"kind": kind})


def run_finished(flow_id: str, status: str) -> None:
    """Count one run of ``flow_id`` that ended with ``status``."""
    _add(RUNS, 1, {"flow": flow_id, "status": status})


def _flow_id(args: Any) -> str:
    params = args[0] if args else None
    flow = params.get("flow") if isinstance(params, dict) else None
    return str(flow.get("id")) if isinstance(flow, dict) and flow.get("id") else "unknown"


class _RunOutcome(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        if workflow.info().workflow_type != WORKFLOW_TYPE:  # FlowLoop children are parts of a run
            return await super().execute_workflow(input)
        flow = _flow_id(input.args)
        try:
            result = await super().execute_workflow(input)
        except (CancelledError, TimeoutError, ApplicationError) as exc:
            run_finished(flow, {CancelledError: "cancelled", TimeoutError: "timed_out"}.get(type(exc), "failed"))
            raise
        except BaseException as exc:
            if type(exc).__name__ == "CancelledError":  # asyncio's: the run was cancelled while waiting
                run_finished(flow, "cancelled")
            raise
        run_finished(flow, str(result.get("status")) if isinstance(result, dict) else "completed")
        return result


class RunMetrics(Interceptor):
    """Worker interceptor counting run outcomes (``flowtide_runs_total``) at the workflow's edge."""

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        return _RunOutcome

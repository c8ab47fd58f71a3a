"""The typed contracts of ``workflows.contracts`` hold for what real runs send.

A run with a failing HTTP step (a real activity failure), an absorbed failure and a failed run: every key
its run record, step rows and error records carry is declared by ``RunRecord``, ``StepRow`` and
``ErrorRecord`` (and every required key is there), and the failure details decode with the one decoder.
A user who calls ``FlowWorkflow.run`` through a typed handle gets the record converted by the SDK with
these TypedDicts as type hints.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from temporalio.api.failure.v1 import Failure
from temporalio.client import WorkflowFailureError
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError

from flowtide.workflows.contracts import (
    ActivityResult,
    ActivityTask,
    AttemptFailure,
    ErrorRecord,
    RunFailure,
    RunRecord,
    StepRow,
    WireStep,
    activity_task,
    error_record,
)
from flowtide.workflows.engine import FlowWorkflow
from flowtide.workflows.language import parse_flow


def _keys_fit(value: dict[str, Any], contract: Any, where: str) -> None:
    declared = set(contract.__required_keys__) | set(contract.__optional_keys__)
    assert set(value) <= declared, f"{where}: keys {sorted(set(value) - declared)} are not in {contract.__name__}"
    assert set(contract.__required_keys__) <= set(value), \
        f"{where}: {contract.__name__} keys {sorted(set(contract.__required_keys__) - set(value))} are missing"


def _record_fits(rec: dict[str, Any]) -> None:
    _keys_fit(rec, RunRecord, "run record")
    for row in rec["steps"]:
        _keys_fit(row, StepRow, f"step row {row['stepId']}")
        for err in ([row["error"]] if row["error"] else []) + row["warnings"]:
            _keys_fit(err, ErrorRecord, f"error of {row['stepId']}")
    for err in rec["errors"] + ([rec["error"]] if rec["error"] else []):
        _keys_fit(err, ErrorRecord, "run error")


def _flow(base: str, *, absorb: bool) -> dict[str, Any]:
    fast = {"maxRetries": 1, "delayMs": 10, "backoffMultiplier": 1}
    # remote: a regular activity's task and result are in the history (a local one's task is not)
    return {"id": f"contracts-{absorb}", "settings": {"execution": "remote"}, "steps": [
        {"id": "ok", "stepType": "core.http", "input": {"url": f"{base}/ok"}},
        {"id": "fails", "stepType": "core.http", "input": {"url": f"{base}/status/503"}, "retryPolicy": fast,
         "continueOnError": absorb},
        {"id": "out", "stepType": "core.return", "input": {"output": "{{ fails.output }}"}}]}


async def test_a_run_record_fits_its_contract(client: Any, task_queue: str, worker: Any, service: Any) -> None:
    handle = await client.start_workflow(FlowWorkflow.run, {"flow": _flow(service.url, absorb=True), "input": {}},
                                         id=f"contracts-{uuid.uuid4().hex[:8]}", task_queue=task_queue)
    rec = await handle.result()
    assert rec["status"] == "completed_with_errors"
    _record_fits(rec)
    failed = next(s for s in rec["steps"] if s["stepId"] == "fails")
    assert failed["error"]["code"] == "HTTP_SERVER_ERROR" and failed["error"]["absorbed"] is True
    assert failed["attempts"] == 2
    # what crossed the workflow/activity boundary, read back from the history as any client would
    tasks, results = [], []
    async for e in handle.fetch_history_events():
        if e.HasField("activity_task_scheduled_event_attributes"):
            tasks += await client.data_converter.decode(e.activity_task_scheduled_event_attributes.input.payloads)
        elif e.HasField("activity_task_completed_event_attributes"):
            results += await client.data_converter.decode(e.activity_task_completed_event_attributes.result.payloads)
    assert len(tasks) == 2 and len(results) == 1
    for task in tasks:
        _keys_fit(task, ActivityTask, f"activity task of {task['stepId']}")
    _keys_fit(results[0], ActivityResult, "activity result")


async def test_a_failed_run_carries_its_record_in_run_failure(client: Any, task_queue: str, worker: Any,
                                                             service: Any) -> None:
    handle = await client.start_workflow(FlowWorkflow.run, {"flow": _flow(service.url, absorb=False), "input": {}},
                                         id=f"contracts-{uuid.uuid4().hex[:8]}", task_queue=task_queue)
    with pytest.raises(WorkflowFailureError) as err:
        await handle.result()
    cause = err.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "HTTP_SERVER_ERROR"
    ended = RunFailure.decode(cause.details)
    assert ended is not None and ended.run is not None
    assert ended.record["stepId"] == "fails" and ended.run["status"] == "failed"
    _record_fits(dict(ended.run))
    _keys_fit(dict(ended.record), ErrorRecord, "the run's error")
    live = await handle.query(FlowWorkflow.record)  # typed: the SDK converts with the TypedDict hints
    assert live["firstFailedStep"] == "fails"


async def test_attempt_failure_travels_through_the_payload_converter() -> None:
    rec = error_record(step_id="s", step_type="core.http", code="HTTP_SERVER_ERROR", message="unavailable",
                       retryable=True, provider_status=503, attempt=2)
    _keys_fit(dict(rec), ErrorRecord, "error_record")
    sent = AttemptFailure(rec, {"body": "x"}, ["line"])
    failure = Failure()
    error = ApplicationError("unavailable", *sent.encode(), type="HTTP_SERVER_ERROR")
    await DataConverter.default.encode_failure(error, failure)
    back = await DataConverter.default.decode_failure(failure)
    assert isinstance(back, ApplicationError)
    assert AttemptFailure.decode(back.details) == sent


def test_decoders_refuse_details_of_another_shape() -> None:
    assert AttemptFailure.decode(None) is None
    assert AttemptFailure.decode(["a message", 3]) is None
    assert RunFailure.decode([]) is None
    rec = error_record(step_id=None, step_type=None, code="X", message="m")
    only_record = AttemptFailure.decode([dict(rec)])  # what an older boundary could have sent
    assert only_record is not None and only_record.output is None and only_record.console == []
    no_run = RunFailure.decode([dict(rec)])
    assert no_run is not None and no_run.run is None


def test_activity_task_and_result_shapes() -> None:
    task = activity_task("core.http", {"url": "http://127.0.0.1/"}, step_id="s", timeout=5.0, retry={},
                         run_id="r", workflow_id="w", connection="api", project="p")
    _keys_fit(dict(task), ActivityTask, "activity task")
    plain = activity_task("core.http", {}, step_id="s", timeout=5.0, retry={}, run_id="r", workflow_id="w")
    assert "connection" not in plain and "project" not in plain  # recorded tasks keep their exact shape


def test_the_wire_step_is_what_the_language_hands_the_engine() -> None:
    """``Step.to_wire()`` and ``WireStep`` name the same keys: neither can grow a key alone."""
    flow = parse_flow({"id": "wire", "steps": [
        {"id": "a", "stepType": "core.http", "input": {"url": "http://127.0.0.1/"}, "connection": "api",
         "circuitBreaker": {"failureThreshold": 3}},
        {"id": "loop", "stepType": "core.for-each", "input": {"items": [1], "steps": [
            {"id": "inner", "stepType": "core.set-variable", "input": {"x": 1}}]}}]}, "wire")
    wire = flow.to_wire()
    _keys_fit(wire["steps"][0], WireStep, "a step with every optional key")
    _keys_fit(wire["steps"][1]["blocks"]["steps"][0], WireStep, "a nested step")

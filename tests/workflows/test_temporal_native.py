"""What Temporal's own tools show of a run: the failure is the step's error (no Python stack unless
``FLOWTIDE_DEBUG``), the SDK's ``str()`` names the code once, and the signals a flow waits for are named
handlers that ``temporal workflow metadata`` (the ``__temporal_workflow_metadata`` query) lists."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

NOT_FOUND = {"id": "native-404", "steps": [
    {"stepId": "fetch", "stepType": "core.http", "input": {"url": "{{ initial.url }}/missing"}}]}
WAITS = {"id": "native-signal", "steps": [
    {"stepId": "approval", "stepType": "core.wait-for-signal", "input": {"signal": "approve", "timeout": 30}},
    {"stepId": "check", "stepType": "core.if", "input": {"condition": True, "then": [
        {"stepId": "second", "stepType": "core.wait-for-signal", "input": {"signal": "confirm"}}]}},
    {"stepId": "templated", "stepType": "core.wait-for-signal", "input": {"signal": "{{ initial.name }}"}}]}


async def _failed(client: Any, task_queue: str, flow: dict[str, Any], payload: Any) -> tuple[Any, ApplicationError]:
    handle = await client.start_workflow("FlowWorkflow", {"flow": flow, "input": payload},
                                         id=f"native-{uuid.uuid4().hex[:8]}", task_queue=task_queue)
    with pytest.raises(WorkflowFailureError) as err:
        await asyncio.wait_for(handle.result(), 20)
    assert isinstance(err.value.cause, ApplicationError)
    return handle, err.value.cause


async def _failures(handle: Any) -> tuple[Any, list[Any]]:
    """The run's failure and its step attempts' failures, as the history (and so the Web UI) holds them."""
    history = await handle.fetch_history()
    run = [e.workflow_execution_failed_event_attributes.failure for e in history.events
           if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED]
    attempts = [e.activity_task_failed_event_attributes.failure for e in history.events
                if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED]
    # a step run as a local activity (a GET, by default) records its final failure in its marker
    attempts += [e.marker_recorded_event_attributes.failure for e in history.events
                 if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
                 and e.marker_recorded_event_attributes.HasField("failure")]
    assert len(run) == 1
    return run[0], attempts


async def test_a_failed_run_carries_the_steps_error_without_a_stack(client: Any, task_queue: str, worker: Any,
                                                                      service: Any,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOWTIDE_DEBUG", raising=False)
    handle, cause = await _failed(client, task_queue, NOT_FOUND, {"url": service.url})
    assert cause.type == "HTTP_CLIENT_ERROR"
    assert str(cause).count("HTTP_CLIENT_ERROR") == 1, str(cause)
    assert str(cause).startswith("HTTP_CLIENT_ERROR: step 'fetch' failed: "), str(cause)
    failure, attempts = await _failures(handle)
    assert failure.application_failure_info.type == "HTTP_CLIENT_ERROR"
    assert failure.message.startswith("step 'fetch' failed: ") and "HTTP_CLIENT_ERROR" not in failure.message
    assert failure.stack_trace == "", failure.stack_trace
    assert attempts and all(a.stack_trace == "" for a in attempts)


async def test_a_run_that_fails_before_any_step_names_its_code_once(client: Any, task_queue: str, worker: Any
                                                                     ) -> None:
    _, cause = await _failed(client, task_queue, {"id": "bad", "steps": "not a list"}, {})
    assert cause.type == "VALIDATION_ERROR"
    assert str(cause).startswith("VALIDATION_ERROR: the flow or its input is invalid"), str(cause)
    assert str(cause).count("VALIDATION_ERROR") == 1, str(cause)


async def test_flowtide_debug_keeps_the_stack(client: Any, task_queue: str, worker: Any, service: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWTIDE_DEBUG", "1")
    handle, _ = await _failed(client, task_queue, NOT_FOUND, {"url": service.url})
    failure, attempts = await _failures(handle)
    assert "interpreter.py" in failure.stack_trace
    assert attempts and all("_boundary.py" in a.stack_trace for a in attempts)


async def test_the_signals_a_flow_waits_for_are_listed_in_the_metadata(client: Any, task_queue: str,
                                                                        worker: Any) -> None:
    handle = await client.start_workflow("FlowWorkflow", {"flow": WAITS, "input": {"n": 2, "name": "later"}},
                                         id=f"native-{uuid.uuid4().hex[:8]}", task_queue=task_queue)
    for _ in range(100):
        if "approve" in await _details(handle):
            break
        await asyncio.sleep(0.1)
    meta = await handle.query("__temporal_workflow_metadata")
    names = sorted(s.name for s in meta.definition.signal_definitions if s.name)  # "" is the dynamic one
    assert names == ["approve", "confirm"], names  # a templated name is known only when the step runs
    assert "waiting for signal `approve` in step `approval`" in meta.current_details
    # the named handlers deliver as the dynamic one does, and a name not declared still arrives
    await handle.signal("approve", {"ok": True})
    await handle.signal("confirm")
    await handle.signal("later", 3)
    result = await asyncio.wait_for(handle.result(), 20)
    assert result["status"] == "completed"
    outputs = {row["stepId"]: row.get("output") for row in result["steps"]}
    assert outputs["approval"] == {"signal": "approve", "data": {"ok": True}}
    assert outputs["second"] == {"signal": "confirm", "data": None}
    assert outputs["templated"] == {"signal": "later", "data": 3}


async def _details(handle: Any) -> str:
    meta = await handle.query("__temporal_workflow_metadata")
    return str(meta.current_details)


NESTED = {"id": "native-nested-signals", "steps": [
    {"stepId": "child", "stepType": "core.sub-flow", "input": {"flow": {"id": "inner", "steps": [
        {"stepId": "wait-inner", "stepType": "core.wait-for-signal", "input": {"signal": "inner"}}]}}},
    {"stepId": "each", "stepType": "core.for-each", "input": {"items": 1, "steps": [
        {"stepId": "wait-item", "stepType": "core.wait-for-signal", "input": {"signal": "item"}}]}}]}


async def test_signals_of_inline_sub_flows_and_loop_bodies_are_listed_too(client: Any, task_queue: str,
                                                                           worker: Any) -> None:
    handle = await client.start_workflow("FlowWorkflow", {"flow": NESTED, "input": {}},
                                         id=f"native-{uuid.uuid4().hex[:8]}", task_queue=task_queue)
    meta = await handle.query("__temporal_workflow_metadata")
    names = sorted(s.name for s in meta.definition.signal_definitions if s.name)
    assert names == ["inner", "item"], names
    # the run's own handler relays each to the step that waits for it (in the child run, in the loop)
    # (one at a time: the child run waits first, then the loop's step in this run)
    for _ in range(100):
        if (await handle.query("record"))["status"] == "paused":
            break
        await asyncio.sleep(0.1)
    await handle.signal("inner", 1)
    for _ in range(100):
        if "item" in await _details(handle):
            break
        await asyncio.sleep(0.1)
    await handle.signal("item", 2)
    result = await asyncio.wait_for(handle.result(), 20)
    assert result["status"] == "completed", result

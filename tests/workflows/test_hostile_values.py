"""Each input that once left a run stuck in Running: now a terminal status within seconds and a clear code."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from tests.support.flows import any_of_bomb

pytestmark = pytest.mark.usefixtures("worker")


def _deep(levels: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(levels):
        node["a"] = {}
        node = node["a"]
    return root


def _step(kind: str, inp: Any, **options: Any) -> dict[str, Any]:
    return {"stepId": "s", "stepType": kind, "input": inp, **options}


CASES: dict[str, tuple[dict[str, Any], Any, str | None]] = {
    # name: (step, run input, error code, or None when the run completes)
    "shake-digest": (_step("crypto.hash", {"algorithm": "{{ initial.a }}", "data": "x"}), {"a": "shake_128"},
                     "VALIDATION_ERROR"),
    "max-delay-below-first-delay": (_step("core.http", {"url": "{{ initial.url }}/status/500"},
                                          retryPolicy={"maxRetries": 1, "delayMs": 200, "maxDelayMs": 10}),
                                    None, "HTTP_SERVER_ERROR"),
    "delay-1e15": (_step("core.delay", {"seconds": "{{ initial.s }}"}), {"s": 1e15}, "VALIDATION_ERROR"),
    "delay-nan": (_step("core.delay", {"seconds": "{{ initial.x }}"}), {"x": float("nan")}, "VALIDATION_ERROR"),
    "delay-inf-from-template": (_step("core.delay", {"seconds": "{{ '1e400' | float }}"}), {}, "VALIDATION_ERROR"),
    "signal-timeout-inf": (_step("core.wait-for-signal", {"signal": "go", "timeout": "{{ initial.x }}"}),
                           {"x": float("inf")}, "VALIDATION_ERROR"),
    "activity-input-over-2mb": (_step("core.http", {"url": "{{ initial.url }}", "method": "POST",
                                                    "body": "{{ initial.s }}{{ initial.s }}{{ initial.s }}"}),
                                {"s": "x" * 800_000}, "INPUT_TOO_LARGE"),
    "input-600-deep": (_step("core.return", {"output": "{{ initial }}"}), _deep(600), "VALIDATION_ERROR"),
    "ref-to-nowhere": (_step("core.validate", {"data": 1, "schema": {"$ref": "#/nowhere"}}), {},
                       "VALIDATION_ERROR"),
    "catastrophic-regex": (_step("core.validate", {"data": "a" * 40 + "!", "schema": {"pattern": "(a+)+$"}}), {},
                           None),
    "schema-any-of-2-to-the-40": (_step("core.validate", {"data": 1, "schema": any_of_bomb()}), {},
                                  "WORK_BUDGET_EXCEEDED"),
    "unique-items-unsortable": (_step("core.validate", {"data": "{{ initial.items }}",
                                                        "schema": {"uniqueItems": True}}),
                                {"items": [*range(20_000), "x"]}, "WORK_BUDGET_EXCEEDED"),
    "huge-integer": (_step("core.set-variable", {"x": "{{ initial.n | times: initial.n }}"}), {"n": 10**1000},
                     "TEMPLATE_ERROR"),
    "lone-surrogate-signal": (_step("core.wait-for-signal", {"signal": "{{ initial.s }}", "timeout": 0.2}),
                              {"s": "\ud800"}, "SIGNAL_TIMEOUT"),
}


# values that are not plain JSON are refused where they enter the run (issue 23): the run fails before any step
AT_ENTRY = {"delay-nan", "signal-timeout-inf", "input-600-deep"}


@pytest.mark.parametrize("name", list(CASES))
async def test_hostile_input_ends_the_run_with_a_code(client: Any, task_queue: str, service: Any, name: str) -> None:
    step, payload, code = CASES[name]
    flow = {"id": f"hostile-{name}", "steps": [step]}
    handle = await client.start_workflow("FlowWorkflow", {"flow": flow, "input": payload or {"url": service.url}},
                                         id=f"hostile-{uuid.uuid4().hex[:8]}", task_queue=task_queue)
    started = time.monotonic()
    if code is None:
        result = await asyncio.wait_for(handle.result(), 15)
        assert result["status"] == "completed"
    else:
        with pytest.raises(WorkflowFailureError) as err:
            await asyncio.wait_for(handle.result(), 15)
        cause = err.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == code, (cause, getattr(cause, "type", None))
        assert str(cause).startswith("VALIDATION_ERROR: the flow or its input is invalid" if name in AT_ENTRY
                                     else f"{code}: step 's' failed"), str(cause)
    assert time.monotonic() - started < 15


async def test_a_pathological_pattern_in_the_input_schema_is_checked_in_linear_time(client: Any,
                                                                                      task_queue: str) -> None:
    flow = {"id": "schema-regex", "input": {"type": "object", "properties": {"v": {"pattern": "(a+)+$"}}},
            "steps": [_step("core.return", {"output": "{{ initial.v }}"})]}
    handle = await client.start_workflow("FlowWorkflow", {"flow": flow, "input": {"v": "a" * 40 + "!"}},
                                         id=f"hostile-{uuid.uuid4().hex[:8]}", task_queue=task_queue)
    with pytest.raises(WorkflowFailureError) as err:
        await asyncio.wait_for(handle.result(), 10)
    assert isinstance(err.value.cause, ApplicationError) and err.value.cause.type == "VALIDATION_ERROR"
    assert "does not match" in err.value.cause.details[0]["problems"][0]["message"]


async def test_an_exponential_input_schema_fails_the_run_at_its_start(client: Any, task_queue: str) -> None:
    flow = {"id": "schema-bomb", "input": any_of_bomb(), "steps": [_step("core.return", {"output": 1})]}
    handle = await client.start_workflow("FlowWorkflow", {"flow": flow, "input": 1},
                                         id=f"hostile-{uuid.uuid4().hex[:8]}", task_queue=task_queue)
    with pytest.raises(WorkflowFailureError) as err:
        await asyncio.wait_for(handle.result(), 15)
    assert isinstance(err.value.cause, ApplicationError) and err.value.cause.type == "VALIDATION_ERROR"
    assert "250,000 evaluations" in err.value.cause.details[0]["problems"][0]["message"]

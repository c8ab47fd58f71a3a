"""Templates and conditions at the documented limits run inside workflow tasks without tripping the SDK's
2 s deadlock detector (a tripped detector fails the workflow task, which Temporal retries forever)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from temporalio.api.enums.v1 import EventType

from flowtide.client.runs import start_run, wait_record
from flowtide.workflows.language.dsl import parse_flow
from tests.support.burners import cpu_burners

ITEMS = 2_000


def heavy_flow() -> dict:
    # One template string near the 64 KiB cap, with 1,600 placeholders that index a 2,000-item payload.
    big = " ".join(f"{{{{ initial.items[{i}].name }}}}" for i in range(1_600))
    assert 40_000 < len(big) < 64 * 1024
    steps: list[dict] = [{"stepId": "concat", "stepType": "core.set-variable", "input": {"all": big}}]
    # 400 in-workflow steps (more than one workflow task's worth), each copying and filtering the payload.
    for i in range(200):
        steps.append({"stepId": f"copy-{i}", "stepType": "core.set-variable",
                      "input": {"items": "{{ initial.items }}", "n": "{{ initial.items | size }}",
                                "names": "{{ initial.items | map: 'name' | join: ',' | size }}"}})
        steps.append({"stepId": f"check-{i}", "stepType": "core.if", "input": {
            "condition": f"{{{{ vars.n }}}} == {ITEMS} and {{{{ initial.items[{i}].id }}}} == {i}",
            "then": [], "else": [{"stepId": f"wrong-{i}", "stepType": "core.return", "input": {"output": "bad"}}]}})
    steps.append({"stepId": "done", "stepType": "core.return",
                  "input": {"output": {"n": "{{ vars.n }}", "length": "{{ vars.all | size }}"}}})
    return {"id": "render-limits", "steps": steps}


@pytest.fixture
def busy_machine() -> Iterator[None]:
    """CPU burners beside the worker for the whole test: the limits must hold on a saturated machine."""
    with cpu_burners():
        yield


async def test_templates_at_the_limits_never_trip_the_deadlock_detector(busy_machine, client, task_queue, worker):
    payload = {"items": [{"id": i, "name": f"customer-{i:05d}", "tags": ["a", "b"]} for i in range(ITEMS)]}
    handle = await start_run(client, parse_flow(heavy_flow(), source="test"), payload, task_queue=task_queue)
    rec = await wait_record(handle)
    assert rec["status"] == "completed", rec["errors"]
    assert rec["output"]["n"] == ITEMS and rec["output"]["length"] == 1_600 * 15 - 1
    events = [e async for e in handle.fetch_history_events()]
    failed_tasks = [e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
    assert failed_tasks == []
    print("workflow task seconds:", [round(t, 3) for t in task_seconds(events)])


def task_seconds(events: list) -> list[float]:
    """How long each workflow task ran (started to completed), from the history's timestamps."""
    out, started = [], None
    for e in events:
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            started = e.event_time.ToDatetime()
        elif e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and started is not None:
            out.append((e.event_time.ToDatetime() - started).total_seconds())
    return out

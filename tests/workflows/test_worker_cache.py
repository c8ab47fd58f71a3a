"""The worker's sticky cache and workflow-task slots are settings (FLOWTIDE_MAX_CACHED_WORKFLOWS,
FLOWTIDE_MAX_WORKFLOW_TASKS): more runs wait than the cache holds, and every one still resumes correctly
(evicted runs are replayed from their history when their signal comes)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from flowtide.client.runs import start_run, wait_record
from flowtide.worker.app import MAX_CACHED_WORKFLOWS, MAX_WORKFLOW_TASKS, WorkerConfigError, build_worker
from flowtide.workflows.language.dsl import parse_flow

WAITING = {"id": "cache-waiting", "steps": [
    {"stepId": "approval", "stepType": "core.wait-for-signal", "input": {"signal": "go", "timeout": 600}},
    {"stepId": "done", "stepType": "core.return", "input": {"output": "{{ approval.data }}"}}]}


def test_cache_and_workflow_task_defaults_bound_memory(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOWTIDE_MAX_CACHED_WORKFLOWS", raising=False)
    monkeypatch.delenv("FLOWTIDE_MAX_WORKFLOW_TASKS", raising=False)
    config = build_worker(client, "cache-defaults").config()
    assert (config["max_cached_workflows"], config["max_concurrent_workflow_tasks"]) == (
        MAX_CACHED_WORKFLOWS, MAX_WORKFLOW_TASKS)


@pytest.mark.parametrize(("name", "value"), [("FLOWTIDE_MAX_CACHED_WORKFLOWS", "lots"),
                                             ("FLOWTIDE_MAX_WORKFLOW_TASKS", "1"),
                                             ("FLOWTIDE_MAX_ACTIVITIES", "0"),
                                             ("FLOWTIDE_GRACEFUL_SHUTDOWN_S", "nan")])
def test_a_bad_worker_setting_is_said_by_name(client: Any, monkeypatch: pytest.MonkeyPatch, name: str,
                                              value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(WorkerConfigError, match=f"{name} must be .* not '{value}'"):
        build_worker(client, "cache-bad-setting")


async def test_runs_beyond_the_sticky_cache_resume(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWTIDE_MAX_CACHED_WORKFLOWS", "2")
    monkeypatch.setenv("FLOWTIDE_MAX_WORKFLOW_TASKS", "2")
    tq = f"cache-{uuid.uuid4().hex[:8]}"
    flow = parse_flow(WAITING)
    worker = build_worker(client, tq, graceful_shutdown_s=1)
    assert (worker.config()["max_cached_workflows"], worker.config()["max_concurrent_workflow_tasks"]) == (2, 2)
    async with worker:
        handles = [await start_run(client, flow, {}, task_queue=tq) for _ in range(6)]
        for h in handles:  # every run has reached its wait: 6 runs, 2 cached at most
            assert (await h.query("record"))["status"] == "paused"
        await asyncio.gather(*(h.signal("go", {"n": i}) for i, h in enumerate(handles)))
        records = await asyncio.gather(*(wait_record(h) for h in handles))
    assert [r["status"] for r in records] == ["completed"] * 6
    assert [r["output"] for r in records] == [{"n": i} for i in range(6)]

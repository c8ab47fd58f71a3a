"""Helpers to run flow documents on the test server and get their run records."""

from __future__ import annotations

from typing import Any

from client.runs import start_run, wait_record
from workflows.dsl import parse_flow


async def run_flow(client: Any, task_queue: str, doc: Any, payload: Any = None, **kw: Any) -> dict[str, Any]:
    """Parse ``doc`` (either spelling), run it to the end, return the run record."""
    flow = parse_flow(doc, source="test")
    handle = await start_run(client, flow, payload if payload is not None else {}, task_queue=task_queue, **kw)
    return await wait_record(handle)


def step(rec: dict[str, Any], step_id: str, iteration: int | None = None) -> dict[str, Any]:
    """The last record of ``step_id`` (in ``iteration``) in a run record."""
    rows = [s for s in rec["steps"] if s["stepId"] == step_id and s.get("iteration") == iteration]
    assert rows, f"no step {step_id} in {[s['stepId'] for s in rec['steps']]}"
    return rows[-1]

"""A run uses only its own project's connections and the database-wide ones, never another project's: the
project travels from the run's ``ProjectId`` (or its parent run) into each step's task, and the worker looks
the connection up within it."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from flowtide.client.runs import start_run, wait_record
from flowtide.store.connections import Connections
from flowtide.workflows.language.dsl import parse_flow

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture
def conns(conns: Connections, service: Any) -> Connections:
    """The shared store (tests/conftest.py) with one connection of each project and two database-wide: one that
    lists the demo service as its origin (projects may use it there), one that lists no origin (only runs
    without a project may use it: a project could send it anywhere)."""
    c = conns
    c.add("ours", "bearer", {"token": "t-" + secrets.token_hex(8)}, "acme")
    c.add("theirs", "bearer", {"token": "t-" + secrets.token_hex(8)}, "other")
    c.add("shared", "bearer", {"token": "t-" + secrets.token_hex(8), "origins": [service.url]})
    c.add("elsewhere", "bearer", {"token": "t-" + secrets.token_hex(8), "origins": ["https://api.example.test"]})
    c.add("anywhere", "bearer", {"token": "t-" + secrets.token_hex(8)})
    return c


def _flow(service: Any, name: str, nested: bool = False) -> Any:
    call = {"stepId": "call", "stepType": "core.http", "connection": name, "retryPolicy": {"maxRetries": 0},
            "input": {"url": service.url + "/echo"}}
    steps = [{"stepId": "inner", "stepType": "core.sub-flow", "input": {"flow": {"id": "inner", "steps": [call]}}}] \
        if nested else [call]
    return parse_flow({"id": f"scope-{name}", "steps": steps}, source="test")


async def _code(client: Any, task_queue: str, flow: Any, project: str | None) -> str | None:
    rec = await wait_record(await start_run(client, flow, {}, task_queue=task_queue, project_id=project))
    return None if rec["status"] == "completed" else (rec["errors"] or [{}])[-1].get("code")


@pytest.mark.parametrize(("name", "project", "code"), [
    ("ours", "acme", None), ("shared", "acme", None), ("theirs", "acme", "AUTH_MISSING"),
    ("shared", None, None), ("ours", None, "AUTH_MISSING"),
    # an operator's connection goes only to its origins, and one without origins to no project's step
    ("elsewhere", "acme", "VALIDATION_ERROR"), ("elsewhere", None, "VALIDATION_ERROR"),
    ("anywhere", "acme", "VALIDATION_ERROR"), ("anywhere", None, None)])
async def test_a_run_sees_its_projects_and_the_shared_connections_only(
        client: Any, task_queue: str, service: Any, conns: Connections, name: str, project: str | None,
        code: str | None) -> None:
    assert await _code(client, task_queue, _flow(service, name), project) == code


async def test_a_sub_flow_uses_its_parent_runs_project(client: Any, task_queue: str, service: Any,
                                                       conns: Connections) -> None:
    assert await _code(client, task_queue, _flow(service, "ours", nested=True), "acme") is None
    assert await _code(client, task_queue, _flow(service, "theirs", nested=True), "acme") == "AUTH_MISSING"

"""Where steps run by default (``workflows.placement``): a short idempotent HTTP call as a local activity,
everything else as a regular activity; ``execution`` overrides both ways (docs/performance.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType

from flowtide.client.history import record_from_events
from flowtide.client.runs import start_run, wait_record
from flowtide.workflows.language.dsl import parse_flow
from tests.support.flows import step
from tests.support.steps import http

pytestmark = pytest.mark.usefixtures("worker")


async def run_where(client: Any, task_queue: str, doc: dict[str, Any],
                    handles: list[Any] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Run ``doc``; return its record and, per activity id, where it ran: ``local`` (a local-activity
    marker in the history) or ``remote`` (ActivityTaskScheduled). The run's handle goes to ``handles``."""
    handle = await start_run(client, parse_flow(doc, source="test"), {}, task_queue=task_queue)
    if handles is not None:
        handles.append(handle)
    rec = await wait_record(handle)
    where: dict[str, str] = {}
    async for e in handle.fetch_history_events():
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            where[e.activity_task_scheduled_event_attributes.activity_id] = "remote"
        elif e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            attrs = e.marker_recorded_event_attributes
            if attrs.marker_name == "core_local_activity":
                data = json.loads(attrs.details["data"].payloads[0].data)
                where[data["activity_id"]] = "local"
    return rec, where


async def test_a_flow_without_settings_runs_short_idempotent_calls_locally(client, task_queue, service):
    rec, where = await run_where(client, task_queue, {"id": "auto-local", "steps": [
        http("get", service.url + "/ok"),
        {"stepId": "put", "stepType": "core.http", "input": {"url": service.url + "/echo", "method": "PUT"}},
        {"stepId": "post", "stepType": "core.http", "input": {"url": service.url + "/echo", "method": "POST"}},
        {"stepId": "post-keyed", "stepType": "core.http",
         "input": {"url": service.url + "/echo", "method": "POST", "idempotencyKey": "order-7"}},
        {"stepId": "patch-keyed", "stepType": "core.http", "input": {
            "url": service.url + "/echo", "method": "PATCH", "headers": {"Idempotency-Key": "order-7"}}},
        http("slow", service.url + "/ok", timeout=31),  # one attempt may take longer than the bound
        http("many-retries", service.url + "/ok", retryPolicy={"maxRetries": 10}),
        {"stepId": "code", "stepType": "core.code", "input": {"script": "return 1"}},
    ]})
    assert rec["status"] == "completed", rec["errors"]
    assert where == {"get": "local", "put": "local", "post": "remote", "post-keyed": "local",
                     "patch-keyed": "local", "slow": "remote", "many-retries": "remote", "code": "remote"}


async def test_execution_overrides_the_rule_both_ways(client, task_queue, service):
    _, where = await run_where(client, task_queue, {"id": "forced", "steps": [
        http("get", service.url + "/ok", execution="remote"),
        {"stepId": "post", "stepType": "core.http", "execution": "local",
         "input": {"url": service.url + "/echo", "method": "POST"}}]})
    assert where == {"get": "remote", "post": "local"}
    _, where = await run_where(client, task_queue, {"id": "flow-remote", "settings": {"execution": "remote"},
                                                    "steps": [http("get", service.url + "/ok")]})
    assert where == {"get": "remote"}


async def test_the_items_of_an_adaptive_loop_stay_remote(client, task_queue, service):
    """Their retried rate-limit answers travel in heartbeats, which a local activity does not have."""
    def loop(concurrency: Any) -> dict[str, Any]:
        return {"stepId": "each", "stepType": "core.for-each", "input": {
            "items": 2, "concurrency": concurrency, "steps": [http("get", service.url + "/ok")]}}
    _, where = await run_where(client, task_queue, {"id": "adaptive", "steps": [loop({"max": 2, "adaptive": True})]})
    assert where == {"get#0": "remote", "get#1": "remote"}
    _, where = await run_where(client, task_queue, {"id": "fixed", "steps": [loop(2)]})
    assert where == {"get#0": "local", "get#1": "local"}


async def test_an_auto_local_step_keeps_retries_attempts_and_error_records(client, task_queue, service, key):
    handles: list[Any] = []
    rec, where = await run_where(client, task_queue, {"id": "auto-local-errors", "steps": [
        http("flaky", f"{service.url}/flaky?fail=2&key={key}", retryPolicy={"maxRetries": 2, "delayMs": 100}),
        {"stepId": "attempts", "stepType": "core.set-variable", "input": {"n": "{{ flaky.$meta.attempts }}"}},
        http("missing", service.url + "/customers/404", continueOnError=True),
        http("down", service.url + "/status/500", retryPolicy={"maxRetries": 1, "delayMs": 100})]}, handles)
    assert where == {"flaky": "local", "missing": "local", "down": "local"}
    assert step(rec, "flaky")["attempts"] == 3 and step(rec, "attempts")["output"] == {"n": 3}
    assert step(rec, "missing")["error"]["code"] == "HTTP_CLIENT_ERROR"
    assert rec["status"] == "failed" and rec["firstFailedStep"] == "down"
    assert (step(rec, "down")["error"]["code"], step(rec, "down")["attempts"]) == ("HTTP_SERVER_ERROR", 2)

    # the record rebuilt from the history alone (when no interpreter can replay it) reads the same markers
    rebuilt = await record_from_events(await handles[0].fetch_history(), client.data_converter, status="failed")
    for step_id in ("flaky", "missing", "down"):
        got, want = step(rebuilt, step_id), step(rec, step_id)
        assert (got["status"], got["attempts"], got["output"]) == (want["status"], want["attempts"], want["output"])
        assert (got["error"] or {}).get("code") == (want["error"] or {}).get("code")
    assert rebuilt["firstFailedStep"] == "down" and [s["stepId"] for s in rebuilt["steps"]] == ["flaky", "missing",
                                                                                              "down"]

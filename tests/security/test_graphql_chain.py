"""GraphQL takes a run that continued as new by its first run id (the id its record and the runs list show)."""

from __future__ import annotations

import asyncio
from typing import Any

from flowtide.client.runs import wait_record
from tests.service import conftest as service
from tests.support.service import new_id
from tests.workflows.test_long_runs import cycle, runs_so_far

api, http, plain_structlog = service.api, service.http, service.plain_structlog  # the service tests' fixtures


async def gql(api: Any, http: Any, query: str, **variables: Any) -> dict[str, Any]:
    r = await http.post(api.url("/graphql"), json={"query": query, "variables": variables}, headers=api.headers("run"))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def start_chain(api: Any, http: Any, rounds: int) -> tuple[str, str]:
    """Deploy and start a run that continues as new every few steps; its (first run id, workflow id)."""
    doc = {**cycle(rounds, events=30), "id": new_id("chain")}
    await api.deploy(http, doc)
    started = (await gql(api, http, "mutation($f: String!) { startRun(flowId: $f) { runId workflowId } }",
                         f=doc["id"]))["data"]["startRun"]
    return started["runId"], started["workflowId"]


async def test_cancel_run_takes_the_first_run_id_of_a_chain(api, http):
    first, wid = await start_chain(api, http, 10**9)  # endless
    await runs_so_far(api.svc.client, wid, 3)
    body = await gql(api, http, "mutation($r: String!) { cancelRun(runId: $r) { runId status } }", r=first)
    assert ((body.get("data") or {}).get("cancelRun") or {}).get("status") == "cancel_requested", body
    rec = await asyncio.wait_for(wait_record(api.svc.client.get_workflow_handle(wid)), 30)
    assert rec["status"] == "cancelled" and rec["runId"] == first and rec["chain"]["runs"] >= 3


async def test_rerun_and_run_take_the_first_run_id_of_a_chain(api, http):
    first, wid = await start_chain(api, http, 12)
    rec = await asyncio.wait_for(wait_record(api.svc.client.get_workflow_handle(wid)), 30)
    assert rec["status"] == "completed" and rec["chain"]["runs"] >= 2
    run = (await gql(api, http, "query($r: String!) { run(id: $r) { runId status output } }", r=first))
    assert run["data"]["run"] == {"runId": first, "status": "completed", "output": rec["output"]}, run
    body = await gql(api, http, "mutation($r: String!) { rerun(runId: $r) { runId workflowId } }", r=first)
    again = (body.get("data") or {}).get("rerun")
    assert again and again["runId"] != first, body
    new = await asyncio.wait_for(wait_record(api.svc.client.get_workflow_handle(again["workflowId"])), 30)
    assert new["status"] == "completed" and new["rerunOf"] == first
    assert new["output"]["n"] == rec["output"]["n"] == 12

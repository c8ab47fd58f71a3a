"""``--json`` on the commands that act on runs: signal, cancel and runs watch print one JSON document."""

from __future__ import annotations

import json

from flowtide.client.runs import start_run
from flowtide.workflows.language.dsl import parse_flow
from tests.support.cli import flowtide_process as flowtide

WAIT = {"id": "json-wait", "steps": [
    {"stepId": "wait", "stepType": "core.wait-for-signal", "input": {"signal": "go", "timeout": 60}},
    {"stepId": "out", "stepType": "core.return", "input": {"output": "{{ wait.data.n }}"}}]}


async def test_signal_cancel_and_watch_print_json(client, worker, task_queue, dev_server):
    env = {"TEMPORAL_ADDRESS": dev_server.address}
    first = await start_run(client, parse_flow(WAIT, source="test"), {}, task_queue=task_queue)
    second = await start_run(client, parse_flow(WAIT, source="test"), {}, task_queue=task_queue)
    code, out, err = await flowtide("signal", first.id, "go", "--data", '{"n": 4}', "--json", env=env)
    assert code == 0, err
    sent = json.loads(out)["signalled"]
    assert sent["workflowId"] == first.id and sent["name"] == "go"
    code, out, err = await flowtide("runs", "watch", first.id, "--json", "--interval", "0.2", env=env)
    assert code == 0, err
    rec = json.loads(out)
    assert rec["status"] == "completed" and rec["output"] == 4
    code, out, err = await flowtide("cancel", second.id, "--json", env=env)
    assert code == 0, err
    assert json.loads(out)["cancelRequested"]["workflowId"] == second.id
    code, out, _ = await flowtide("runs", "watch", second.id, "--json", "--interval", "0.2", env=env)
    assert code == 1 and json.loads(out)["status"] == "cancelled"

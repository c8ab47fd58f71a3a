"""Loop failure thresholds (``failurePolicy``) and adaptive concurrency, inline and batched (issue 18 A, B)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from flowtide.workflows.language.dsl import parse_flow
from tests.support.flows import run_flow, step

ITEMS = 50
BAD = [i for i in range(ITEMS) if i % 5 == 4]  # 4, 9, ..., 49: ten items whose GET answers 404


def policy_flow(base: str, policy: dict[str, Any], *, batch: int = 500) -> dict[str, Any]:
    return {"id": "policy", "settings": {"limits": {"loopBatchSize": batch}}, "steps": [
        {"stepId": "each", "stepType": "core.for-each", "input": {
            "items": "{{ initial.ids }}", "concurrency": 1, "failurePolicy": policy,
            "steps": [{"stepId": "fetch", "stepType": "core.http", "retryPolicy": {"maxRetries": 0},
                       "input": {"url": base + "/customers/{{ $item }}"}}]}},
        {"stepId": "after", "stepType": "core.set-variable", "input": {"never": True}}]}


def ids() -> dict[str, Any]:
    k = uuid.uuid4().hex[:8]
    return {"ids": ["404" if i in BAD else f"{k}-{i}" for i in range(ITEMS)]}


async def _stopped(client: Any, task_queue: str, service: Any, policy: dict[str, Any], batch: int = 500
                   ) -> tuple[dict[str, Any], int]:
    before = sum(service.calls.values())
    rec = await run_flow(client, task_queue, policy_flow(service.url, policy, batch=batch), ids())
    return rec, sum(service.calls.values()) - before


async def test_max_failures_stops_the_loop_after_the_next_failure(client, task_queue, worker, service):
    rec, calls = await _stopped(client, task_queue, service, {"maxFailures": 3})
    assert rec["status"] == "failed"
    assert rec["firstFailedStep"] == "each" and step(rec, "each")["error"]["code"] == "LOOP_FAILURE_THRESHOLD"
    assert calls == BAD[3] + 1 < ITEMS  # the 4th failure (item 19) is the last item called
    detail = json.loads(step(rec, "each")["error"]["detail"])
    assert detail == {"threshold": "maxFailures 3", "failed": 4, "done": 20, "byCode": {"HTTP_CLIENT_ERROR": 4}}
    out = step(rec, "each")["output"]
    assert (out["succeeded"], out["failed"], out["notRun"]) == (16, 4, 30)
    assert [s["stepId"] for s in rec["steps"] if s.get("iteration") is None] == ["each"]


async def test_thresholds_count_across_batches(client, task_queue, worker, service):
    rec, calls = await _stopped(client, task_queue, service, {"maxFailures": 3}, batch=6)
    assert step(rec, "each")["error"]["code"] == "LOOP_FAILURE_THRESHOLD"
    assert calls == BAD[3] + 1  # batches of 6: the 4th failure is in the 4th batch, which stops there
    assert step(rec, "each")["output"]["failed"] == 4
    rec, calls = await _stopped(client, task_queue, service, {"maxFailureRatio": 0.1}, batch=6)
    assert calls == BAD[5] + 1  # more than 10% of 50 items: the 6th failure
    rec, calls = await _stopped(client, task_queue, service, {"stopOn": ["permanent"]}, batch=6)
    assert calls == BAD[0] + 1 and "stopOn permanent" in step(rec, "each")["error"]["message"]


def limited_flow(base: str, concurrency: Any, key: str, items: int = 200) -> dict[str, Any]:
    return {"id": "limited", "steps": [{"stepId": "each", "stepType": "core.for-each", "input": {
        "items": items, "concurrency": concurrency,
        "steps": [{"stepId": "call", "stepType": "core.http",
                   "retryPolicy": {"maxRetries": 100, "delayMs": 50, "backoffMultiplier": 1},
                   "input": {"url": f"{base}/limited?max=5&ms=100&key={key}"}}]}}]}


async def _limited(client: Any, task_queue: str, service: Any, concurrency: Any) -> tuple[dict[str, Any], int]:
    before = service.calls["/limited:429"]
    started = time.monotonic()
    rec = await run_flow(client, task_queue, limited_flow(service.url, concurrency, uuid.uuid4().hex[:8]))
    print(f"concurrency {concurrency}: {time.monotonic() - started:.1f}s")
    return rec, service.calls["/limited:429"] - before


async def test_adaptive_concurrency_backs_off_on_429(client, task_queue, worker, service):
    rec, adaptive_429 = await _limited(client, task_queue, service, {"max": 20, "adaptive": True})
    assert rec["status"] == "completed", rec.get("error")
    assert step(rec, "each")["output"]["succeeded"] == 200
    trace = rec["loops"][0]["concurrency"]
    assert trace[0] == {"item": 0, "concurrency": 1}  # slow start, up to the first 429, then AIMD around 5
    assert max(t["concurrency"] for t in trace) > 5 and trace[-1]["concurrency"] <= 7
    _, fixed_429 = await _limited(client, task_queue, service, 20)
    print(f"429 answers: adaptive {adaptive_429}, fixed {fixed_429}")
    assert adaptive_429 * 5 <= fixed_429


def test_policy_values_are_checked_with_their_paths():
    doc = limited_flow("http://x", {"max": 0, "adaptive": "yes"}, "k")
    doc["steps"][0]["input"]["failurePolicy"] = {"maxFailureRatio": 2, "stopOn": "auth"}
    try:
        parse_flow(doc, source="t")
    except Exception as exc:  # FlowValidationError
        paths = sorted(p.path for p in exc.problems)  # type: ignore[attr-defined]
    assert paths == ["steps[0].input.concurrency.adaptive", "steps[0].input.concurrency.max",
                     "steps[0].input.failurePolicy.maxFailureRatio", "steps[0].input.failurePolicy.stopOn"]


async def test_adaptive_batched_loop_carries_its_concurrency_across_batches(client, task_queue, worker, service):
    doc = limited_flow(service.url, {"max": 8, "adaptive": True}, uuid.uuid4().hex[:8], items=30)
    doc["settings"] = {"limits": {"loopBatchSize": 10}}
    rec = await run_flow(client, task_queue, doc)
    loop = rec["loops"][0]
    assert rec["status"] == "completed" and loop["batched"] and loop["succeeded"] == 30
    assert loop["concurrency"][0] == {"item": 0, "concurrency": 1}
    assert max(t["item"] for t in loop["concurrency"]) >= 10  # later batches went on from the earlier ones


async def test_bad_policy_values_from_templates_fail_the_step_with_a_code(client, task_queue, worker, service):
    doc = limited_flow(service.url, "{{ initial.c }}", "k", items=2)
    doc["steps"][0]["input"]["failurePolicy"] = "{{ initial.p }}"
    for payload in ({"c": {"max": 0}, "p": None}, {"c": 2, "p": {"maxFailures": "x"}}):
        rec = await run_flow(client, task_queue, doc, payload)
        assert rec["status"] == "failed" and step(rec, "each")["error"]["code"] == "VALIDATION_ERROR"


def test_unknown_stop_on_codes_are_warnings():
    doc = policy_flow("http://x", {"stopOn": ["HTTP_NOTFOUND", "auth"]})
    warnings = [str(w) for w in parse_flow(doc, source="t").warnings]
    assert warnings == ["steps[0].input.failurePolicy.stopOn[0]: 'HTTP_NOTFOUND' is neither an error class nor a "
                        "known code (did you mean 'HTTP_NOT_FOUND'?)"]

"""Every adapted seed recipe in ``examples/seeds/`` run from its file, on the real dev server, against the local
demo service (``dev/demo_service.py``), checking what seed 003 / 004 says each one does.

The files take the service's address from the input (``{{ initial.baseUrl }}``); failures the seed talks about
are scripted with ``service.plan(path, statuses...)``, and every test counts the calls the service received.
Where a recipe's timeouts are tens of seconds, the test scales them down (``scaled``) and says so; nothing
else in a file is changed.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from flowtide.activities._sandbox import js_runtime
from flowtide.client.runs import start_run, wait_record
from flowtide.workflows.language.dsl import parse_flow
from tests.support import parts
from tests.support.flows import step

pytestmark = pytest.mark.usefixtures("worker")

SEEDS = Path(__file__).resolve().parents[2] / "examples" / "seeds"


def recipe(name: str) -> Any:
    """The document of ``examples/seeds/<name>`` (JSON or YAML), as a user would write it."""
    path = SEEDS / name
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


def scaled(doc: Any, factor: float) -> Any:
    """The same document with every step ``timeout`` multiplied by ``factor`` (to keep the test short)."""
    for s in doc["steps"] if isinstance(doc, dict) else doc:
        if "timeout" in s:
            s["timeout"] = round(s["timeout"] * factor, 3)
    return doc


async def run(client: Any, task_queue: str, name: str, payload: Any, doc: Any = None) -> dict[str, Any]:
    """Run the recipe ``name`` (or ``doc``, a changed copy of it) to the end; return the run record."""
    flow = parse_flow(doc if doc is not None else recipe(name), source=name)
    return await wait_record(await start_run(client, flow, payload, task_queue=task_queue))


def ids(rec: dict[str, Any]) -> list[str]:
    """The steps that ran, in order (a run superseded by retry-step is left out)."""
    return [s["stepId"] for s in rec["steps"] if not s.get("retried")]


def reruns(rec: dict[str, Any], step_id: str) -> int:
    """How many runs of ``step_id`` failed and were run again (onError maxRetries)."""
    return sum(1 for s in rec["steps"] if s["stepId"] == step_id and s.get("retried"))


def uid() -> str:
    return uuid.uuid4().hex[:10]


# ---- seed 003 recipes ------------------------------------------------------------------------------------
async def test_seed_003_fallback_lookup(client, task_queue, service):
    """primary-lookup fails (absorbed by continueOnError) -> fallback-lookup asks the backup; primary succeeds
    -> fallback-lookup is skipped ($meta.skipped, success) and the backup is never called."""
    from flowtide.dev.demo_service import DemoService
    with DemoService() as backup:
        down, fine, flaky = uid(), uid(), uid()
        service.plan(f"/customers/{down}", 404)
        service.plan(f"/customers/{flaky}", 503, 503, 503)
        base = {"baseUrl": service.url, "backupBaseUrl": backup.url}
        t0 = time.monotonic()
        failing, ok, transient = await asyncio.gather(
            run(client, task_queue, "003-fallback-lookup.json", {**base, "customerId": down}),
            run(client, task_queue, "003-fallback-lookup.json", {**base, "customerId": fine}),
            run(client, task_queue, "003-fallback-lookup.json", {**base, "customerId": flaky}))
        elapsed = time.monotonic() - t0
        backup_calls = dict(backup.calls)

    assert failing["status"] == "completed_with_errors"
    assert step(failing, "primary-lookup")["status"] == "failed"
    assert step(failing, "fallback-lookup")["output"]["body"]["name"] == f"Customer {down}"
    assert [e["code"] for e in failing["errors"]] == ["HTTP_CLIENT_ERROR"]
    assert service.calls[f"/customers/{down}"] == 1  # a 404 is not retried

    assert ok["status"] == "completed" and ok["errors"] == []
    assert step(ok, "fallback-lookup")["status"] == "skipped"
    assert step(ok, "primary-lookup")["output"]["body"]["name"] == f"Customer {fine}"

    # retries happen before continueOnError decides: 3 calls (1 s, 2 s apart), then the fallback
    assert service.calls[f"/customers/{flaky}"] == 3
    assert step(transient, "primary-lookup")["attempts"] == 3
    assert step(transient, "fallback-lookup")["status"] == "completed"
    assert elapsed >= 3.0

    assert backup_calls == {f"/customers/{down}": 1, f"/customers/{flaky}": 1}


async def test_seed_003_process_items(client, task_queue, service):
    """for-each with concurrency 3 and continueOnError: every item is fetched, failures are counted, the
    report step sees count / succeeded / failed and one $errors entry per failed item."""
    good = [uid() for _ in range(6)]
    for item in good:
        service.plan(f"/items/{item}", (200, 1000))  # each answer takes 1 s
    items = [{"id": good[0]}, {"id": "404"}, *({"id": i} for i in good[1:]), {"id": "404"}]
    before = service.calls["/items/404"]
    t0 = time.monotonic()
    rec = await run(client, task_queue, "003-process-items.json", {"baseUrl": service.url, "items": items})
    elapsed = time.monotonic() - t0

    assert rec["status"] == "completed_with_errors"
    assert step(rec, "report-results")["output"] == {"totalProcessed": 8, "succeeded": 6, "failed": 2,
                                                      "errorCount": 2}
    assert [f["index"] for f in step(rec, "process-items")["output"]["failures"]] == [1, 7]
    assert {(e["stepId"], e["iteration"], e["code"]) for e in rec["errors"]} == {
        ("fetch-item", 1, "HTTP_CLIENT_ERROR"), ("fetch-item", 7, "HTTP_CLIENT_ERROR")}
    assert all(service.calls[f"/items/{i}"] == 1 for i in good)
    assert service.calls["/items/404"] - before == 2  # 404s are not retried
    # six 1-second answers, three at a time: about 2 s, never the 6 s of a sequential loop
    assert 2.0 <= elapsed < 5.0, elapsed


async def test_seed_003_validate_input_javascript(client, task_queue):
    """The seed's JavaScript as written: a thrown Error is an execution error ($meta.error.message); the
    Code family's 3 retries happen first (1 s, 2 s, 4 s), then continueOnError absorbs it and the if step
    answers 400; valid input answers 200 after one attempt."""
    if js_runtime() is None:
        parts.missing("JavaScript (mini-racer)", "pip install 'flowtide[js]' on the worker")
    t0 = time.monotonic()
    bad_email, bad_amount, good = await asyncio.gather(
        run(client, task_queue, "003-validate-input.json", {"email": "nope", "amount": 5}),
        run(client, task_queue, "003-validate-input.json", {"email": "a@b.c", "amount": 0}),
        run(client, task_queue, "003-validate-input.json", {"email": "a@b.c", "amount": 5}))
    elapsed = time.monotonic() - t0

    # $meta.error.message is the exception's type and message
    assert bad_email["webhookResponse"] == {"statusCode": 400, "body": {"error": "Error: Missing or invalid email"}}
    assert bad_amount["webhookResponse"] == {"statusCode": 400,
                                             "body": {"error": "Error: Amount must be greater than zero"}}
    for rec in (bad_email, bad_amount):
        assert rec["status"] == "completed_with_errors"
        assert step(rec, "validate-input")["attempts"] == 4
        assert rec["errors"][0]["code"] == "CODE_EXCEPTION" and rec["errors"][0]["type"] == "execution"
        assert "respond-ok" not in ids(rec)
    assert elapsed >= 7.0
    assert good["status"] == "completed"
    assert good["webhookResponse"] == {"statusCode": 200, "body": {"ok": True}}
    assert step(good, "validate-input")["attempts"] == 1
    assert "respond-bad-request" not in ids(good)


async def test_seed_003_charge_card_is_never_retried(client, task_queue, service, monkeypatch):
    """maxRetries: 0 on a non-idempotent Code step: a declined or failed charge is one call, never two."""
    monkeypatch.setenv("FLOWTIDE_SECRET_PAYMENTS_API_KEY", "sk-test-123")
    before = service.calls["/charge"]
    order = uid()
    ok = await run(client, task_queue, "003-charge-card.json",
                   {"baseUrl": service.url, "amount": 42, "customerId": "c7", "orderId": order})
    assert ok["status"] == "completed"
    assert step(ok, "charge-card")["output"] == {"chargeId": step(ok, "charge-card")["output"]["chargeId"],
                                                 "amount": 42.0, "customerId": "c7", "replayed": False}
    sent = [b for b in service.bodies if b["path"] == "/charge"][-1]
    assert sent["headers"]["authorization"] == "Bearer sk-test-123"
    assert json.loads(sent["body"])["idempotencyKey"] == order
    assert "sk-test-123" not in json.dumps(ok)  # the secret never reaches the run record

    declined, broken = await asyncio.gather(
        run(client, task_queue, "003-charge-card.json",
            {"baseUrl": service.url, "amount": 42, "customerId": "declined", "orderId": uid()}),
        run(client, task_queue, "003-charge-card.json",
            {"baseUrl": service.url, "amount": 0, "customerId": "c7", "orderId": uid()}))
    for rec, reason in ((declined, "card declined"), (broken, "amount must be positive")):
        assert rec["status"] == "failed"
        err = step(rec, "charge-card")["error"]
        assert err["code"] == "CODE_EXCEPTION" and err["type"] == "execution"
        assert err["message"] == f'RuntimeError: Charge failed: {{"message": "{reason}"}}'
        assert step(rec, "charge-card")["attempts"] == 1
    assert service.calls["/charge"] - before == 3  # one call per run: no charge was attempted twice


async def test_seed_003_call_partner_api_custom_mode(client, task_queue, service):
    """custom mode: the script's own codes not in nonRetryableErrorCodes (PARTNER_SERVER_ERROR, RATE_LIMITED)
    are retried with the policy's delays (2 s, then 4 s); INVALID_REQUEST and PARTNER_REJECTED halt at once."""
    flaky = uid()
    service.plan(f"/api/lookup/{flaky}", 503, 429)
    b400, b403 = service.calls["/api/lookup/400"], service.calls["/api/lookup/403"]
    t0 = time.monotonic()
    recovered, invalid, rejected = await asyncio.gather(
        run(client, task_queue, "003-call-partner-api.json", {"baseUrl": service.url, "id": flaky}),
        run(client, task_queue, "003-call-partner-api.json", {"baseUrl": service.url, "id": "400"}),
        run(client, task_queue, "003-call-partner-api.json", {"baseUrl": service.url, "id": "403"}))
    elapsed = time.monotonic() - t0

    assert recovered["status"] == "completed"
    assert step(recovered, "call-partner-api")["output"] == {"id": flaky, "name": f"Partner record {flaky}"}
    assert step(recovered, "call-partner-api")["attempts"] == 3
    assert service.calls[f"/api/lookup/{flaky}"] == 3
    assert elapsed >= 6.0  # 2 s + 4 s of backoff

    for rec, code in ((invalid, "INVALID_REQUEST"), (rejected, "PARTNER_REJECTED")):
        assert rec["status"] == "failed"
        err = step(rec, "call-partner-api")["error"]
        assert err["code"] == code and err["type"] == "operational" and err["retryable"] is False
        assert step(rec, "call-partner-api")["attempts"] == 1
    assert service.calls["/api/lookup/400"] - b400 == 1
    assert service.calls["/api/lookup/403"] - b403 == 1


async def test_seed_003_fetch_data_aggressive_retry(client, task_queue, service):
    """aggressive, 5 retries from 2 s, x2: a 404 and a 500 are retried (2 s, 4 s) and the third call
    succeeds; a 401 is not retried even by aggressive."""
    service.plan("/data", 404, 500)
    before = service.calls["/data"]
    t0 = time.monotonic()
    rec = await run(client, task_queue, "003-fetch-data-retry.json", {"baseUrl": service.url})
    elapsed = time.monotonic() - t0
    assert rec["status"] == "completed"
    assert step(rec, "fetch-data")["attempts"] == 3
    assert step(rec, "fetch-data")["output"]["body"]["ok"] is True
    assert service.calls["/data"] - before == 3
    assert 6.0 <= elapsed < 15.0, elapsed

    service.plan("/data", 401)
    before = service.calls["/data"]
    denied = await run(client, task_queue, "003-fetch-data-retry.json", {"baseUrl": service.url})
    assert denied["status"] == "failed"
    assert step(denied, "fetch-data")["error"]["code"] == "HTTP_UNAUTHORIZED"
    assert service.calls["/data"] - before == 1


async def test_seed_003_optional_enrichment(client, task_queue, service):
    """continueOnError: a 404 is recorded in $errors, the step is failed, the run completes with errors."""
    before = service.calls["/extra-data/404"]
    missing, found = await asyncio.gather(
        run(client, task_queue, "003-optional-enrichment.json", {"baseUrl": service.url, "id": "404"}),
        run(client, task_queue, "003-optional-enrichment.json", {"baseUrl": service.url, "id": "9"}))
    assert missing["status"] == "completed_with_errors"
    assert step(missing, "optional-enrichment")["status"] == "failed"
    assert step(missing, "optional-enrichment")["output"]["status"] == 404  # still readable
    assert [(e["code"], e["severity"]) for e in missing["errors"]] == [("HTTP_CLIENT_ERROR", "error")]
    assert missing["firstFailedStep"] == "optional-enrichment"
    assert service.calls["/extra-data/404"] - before == 1
    assert found["status"] == "completed" and found["errors"] == []


# ---- seed 004 examples -----------------------------------------------------------------------------------
async def test_seed_004_error_strategies(client, task_queue, service):
    """continue-workflow absorbs; retry-step re-runs; retry-workflow restarts from the entry step with state
    cleared; stop-workflow (after the HTTP family's 2 retries, 1 s and 2 s apart) fails the run."""
    b404, b500, bflaky = service.calls["/customers/404"], service.calls["/status/500"], service.calls["/flaky"]
    t0 = time.monotonic()
    rec = await run(client, task_queue, "004-error-strategies.yaml", {"baseUrl": service.url})
    elapsed = time.monotonic() - t0

    assert rec["status"] == "failed"
    assert rec["attempt"] == 2  # one workflow restart
    # after the restart the record starts over: each step once, in order
    assert ids(rec) == ["continue-on-error", "retry-this-step", "retry-the-workflow", "stop-on-error"]
    assert [s["status"] for s in rec["steps"]] == ["failed", "completed", "completed", "failed"]
    assert [(e["stepId"], e["code"], e.get("absorbed", False)) for e in rec["errors"]] == [
        ("continue-on-error", "HTTP_CLIENT_ERROR", True), ("stop-on-error", "HTTP_SERVER_ERROR", False)]
    assert rec["firstFailedStep"] == "stop-on-error"
    assert step(rec, "stop-on-error")["attempts"] == 3
    assert service.calls["/customers/404"] - b404 == 2  # once per workflow attempt
    # retry-this-step: 2 calls (fail, retry) + 1 after the restart; retry-the-workflow: fail, then succeed
    assert service.calls["/flaky"] - bflaky == 5
    assert service.calls["/status/500"] - b500 == 3
    assert elapsed >= 3.0


async def test_seed_004_condition_stop(client, task_queue):
    """validate-critical-data routes to stop-workflow when the data is invalid (the run ends; process-data
    never runs), else to process-data."""
    bad, good = await asyncio.gather(
        run(client, task_queue, "004-condition-stop.yaml", {"user": {"name": "ann"}}),
        run(client, task_queue, "004-condition-stop.yaml", {"user": {"input": "hello"}}))
    assert ids(bad) == ["validate-critical-data"]
    assert step(bad, "validate-critical-data")["output"]["valid"] is False
    assert bad["status"] == "completed"  # a stop-workflow word is a deliberate stop (docs: deviations)
    assert ids(good) == ["validate-critical-data", "process-data"]
    assert step(good, "process-data")["output"] == {"user": "hello"}


async def test_seed_004_condition_mixed(client, task_queue, service):
    """then: [send-alert, stop-workflow] sends the alert, then stops; else: [log-warning, continue-processing]
    runs both."""
    before = service.calls["/alerts"]
    critical, fine = await asyncio.gather(
        run(client, task_queue, "004-condition-mixed.yaml", {"baseUrl": service.url, "error": {"critical": True}}),
        run(client, task_queue, "004-condition-mixed.yaml", {"baseUrl": service.url}))
    assert ids(critical) == ["check-error", "send-alert"]
    assert critical["status"] == "completed"
    assert json.loads(step(critical, "send-alert")["output"]["body"]["received"]) == {"message": "critical error"}
    assert service.calls["/alerts"] - before == 1
    assert ids(fine) == ["check-error", "log-warning", "continue-processing"]
    assert step(fine, "continue-processing")["output"] == {"done": True}


async def test_seed_004_important_operation(client, task_queue, service):
    """onError {stop-workflow, maxRetries: 3}: the step is run again up to 3 times; success goes on to
    next-step-id, a step that keeps failing stops the run after 1 + 3 calls."""
    before = service.calls["/flaky"]
    recovers, keeps_failing = await asyncio.gather(
        run(client, task_queue, "004-important-operation.yaml", {"baseUrl": service.url, "failures": 3}),
        run(client, task_queue, "004-important-operation.yaml", {"baseUrl": service.url, "failures": 10}))
    assert recovers["status"] == "completed"
    assert recovers["output"] == {"status": 200, "calls": 4}
    assert recovers["errors"] == []  # superseded runs are not failures of the run
    assert reruns(recovers, "important-operation") == 3
    assert keeps_failing["status"] == "failed"
    assert ids(keeps_failing) == ["important-operation"]
    assert reruns(keeps_failing, "important-operation") == 3
    assert step(keeps_failing, "important-operation")["error"]["code"] == "HTTP_SERVER_ERROR"
    assert service.calls["/flaky"] - before == 8  # 4 + 4: never a fifth call


async def test_seed_004_timeouts(client, task_queue, service):
    """Timeouts (scaled down 20x: 1.5 s, 3 s, 0.525 s) raise TIMEOUT, handled by each step's onError:
    retry-step runs api-call-with-timeout again (onError.maxRetries is its whole budget: no Temporal retries
    inside each run); continue-workflow absorbs optional-operation's timeouts after the HTTP family's retries.
    The slow answers (5 s) are cut at the timeout, not waited for."""
    doc = scaled(recipe("004-timeouts.yaml"), 0.05)
    service.plan("/slow-endpoint", (200, 5000), (200, 5000))
    service.plan("/cache", (200, 5000), (200, 5000), (200, 5000))
    b = {p: service.calls[p] for p in ("/slow-endpoint", "/query", "/cache")}
    t0 = time.monotonic()
    rec = await run(client, task_queue, "004-timeouts.yaml", {"baseUrl": service.url}, doc)
    elapsed = time.monotonic() - t0

    assert rec["status"] == "completed_with_errors"
    assert ids(rec) == ["api-call-with-timeout", "critical-operation", "optional-operation"]
    assert step(rec, "api-call-with-timeout")["status"] == "completed"
    assert reruns(rec, "api-call-with-timeout") == 2  # two timed-out runs, each a single call, then success
    assert step(rec, "critical-operation")["output"]["body"]["path"] == "/query"
    opt = step(rec, "optional-operation")
    assert opt["status"] == "failed" and opt["error"]["code"] == "TIMEOUT" and opt["attempts"] == 3
    assert [(e["stepId"], e["code"]) for e in rec["errors"]] == [("optional-operation", "TIMEOUT")]
    assert {p: service.calls[p] - n for p, n in b.items()} == {"/slow-endpoint": 3, "/query": 1, "/cache": 3}
    # 2 x 1.5 s + 3 x 0.525 s of timeouts and 1 s + 2 s of backoff: ~7.6 s; waiting out 5 s answers
    # would take at least 25 s
    assert 7.0 <= elapsed < 20.0, elapsed


async def test_seed_004_run_limit_conflict(client, task_queue, service):
    """runLimit 1 with retry-step maxRetries 3 (timeouts scaled down 10x): problematic-step times out once and
    fails with "step 'problematic-step' has reached its run limit"; it is never retried."""
    doc = scaled(recipe("004-run-limit-conflict.yaml"), 0.1)
    b_ok, b_slow = service.calls["/ok"], service.calls["/slow"]
    t0 = time.monotonic()
    rec = await run(client, task_queue, "004-run-limit-conflict.yaml", {"baseUrl": service.url}, doc)
    elapsed = time.monotonic() - t0
    assert rec["status"] == "failed"
    assert ids(rec) == ["api-call-with-retries", "problematic-step"]
    err = step(rec, "problematic-step")["error"]
    assert err["code"] == "RUN_LIMIT_REACHED"
    assert err["message"] == "step 'problematic-step' has reached its run limit"
    assert rec["firstFailedStep"] == "problematic-step"
    assert service.calls["/ok"] - b_ok == 1
    assert service.calls["/slow"] - b_slow == 1
    assert elapsed < 6.0, elapsed  # one 1 s timeout, not the 20 s answer and no retries


async def test_seed_004_loop_files(client, task_queue, service):
    """Each iteration has its own retry counter: file2 fails 1 + 3 times and queues no process-file; file1
    and file3 are processed; the loop counts one failed iteration."""
    service.plan("/files/file2", 502, 502, 502, 502)
    b = {f: service.calls[f"/files/{f}"] for f in ("file1", "file2", "file3")}
    rec = await run(client, task_queue, "004-loop-files.yaml", {"baseUrl": service.url})
    processed = [s for s in rec["steps"] if s["stepId"] == "process-file"]
    assert [s["output"] for s in processed] == [{"file": "file1", "size": len("contents of file1")},
                                               {"file": "file3", "size": len("contents of file3")}]
    assert {f: service.calls[f"/files/{f}"] - n for f, n in b.items()} == {"file1": 1, "file2": 4, "file3": 1}
    assert step(rec, "loop-files")["output"]["failed"] == 1
    assert step(rec, "loop-files")["output"]["succeeded"] == 2
    assert [(e["stepId"], e["iteration"]) for e in rec["errors"]] == [("download-file", 1)]
    assert reruns(rec, "download-file") == 3
    # the loop's next steps are its body: they never run again outside the loop, without an item
    assert all(s["iteration"] is not None for s in rec["steps"] if s["stepId"] != "loop-files")
    assert rec["status"] == "completed_with_errors"


def test_every_seed_file_has_a_run_test():
    """No recipe in examples/seeds/ is left without a test in this module (its *.test.yaml are flowtide test cases,
    run by tests/e2e/test_cli_test.py)."""
    names = {p.name for p in SEEDS.iterdir() if ".test." not in p.name}
    source = Path(__file__).read_text(encoding="utf-8")
    assert {n for n in names if f'"{n}"' not in source} == set()

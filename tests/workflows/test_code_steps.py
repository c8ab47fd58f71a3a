"""Code steps inside flows: context, warnings, `$error` retry rules, the seed's validation recipe."""

from __future__ import annotations

import pytest

from tests.support.flows import run_flow, step

pytestmark = pytest.mark.usefixtures("worker")


def code(step_id: str, script: str, **extra):
    return {"stepId": step_id, "stepType": "core.code", "input": {"script": script}, **extra}


async def test_script_sees_input_steps_vars_and_prints(client, task_queue):
    rec = await run_flow(client, task_queue, {"id": "ctx", "steps": [
        {"stepId": "setv", "stepType": "core.set-variable", "input": {"factor": 3}},
        code("calc", "print('computing', input['n'])\nreturn {'n': input['n'] * vars['factor'], "
                     "'prev': steps['setv']['output']['factor']}")]}, {"n": 7})
    s = step(rec, "calc")
    assert s["output"] == {"n": 21, "prev": 3}
    assert s["console"] == ["computing 7"]


async def test_warning_completes_with_errors(client, task_queue):
    rec = await run_flow(client, task_queue, {"id": "warn", "steps": [
        code("sync", "return {'synced': 2, '$warning': {'code': 'PARTIAL_SYNC', 'message': '1 of 3 failed'}}"),
        {"stepId": "after", "stepType": "core.set-variable",
         "input": {"synced": "{{ sync.synced }}", "status": "{{ sync.$meta.operationalStatus }}",
                   "warned": "{{ $errors[0].severity }}"}}]})
    assert rec["status"] == "completed_with_errors"
    assert step(rec, "sync")["status"] == "warning"
    assert step(rec, "after")["output"] == {"synced": 2, "status": "warning", "warned": "warning"}


async def test_user_error_not_retried_in_smart_mode(client, task_queue):
    rec = await run_flow(client, task_queue, {"id": "uerr", "steps": [
        code("partner", "return {'$error': {'code': 'RATE_LIMITED', 'message': 'partner said no'}}",
             retryPolicy={"maxRetries": 3, "delayMs": 100})]})
    s = step(rec, "partner")
    assert s["attempts"] == 1
    assert s["error"]["code"] == "RATE_LIMITED" and s["error"]["type"] == "operational"


async def test_user_error_retried_in_custom_mode_unless_denied(client, task_queue):
    policy = {"mode": "custom", "maxRetries": 2, "delayMs": 100, "nonRetryableErrorCodes": ["INVALID_REQUEST"]}
    retried = await run_flow(client, task_queue, {"id": "c1", "steps": [
        code("call", "return {'$error': {'code': 'PARTNER_SERVER_ERROR', 'message': '500'}}", retryPolicy=policy)]})
    assert step(retried, "call")["attempts"] == 3
    denied = await run_flow(client, task_queue, {"id": "c2", "steps": [
        code("call", "return {'$error': {'code': 'INVALID_REQUEST', 'message': 'bad'}}", retryPolicy=policy)]})
    assert step(denied, "call")["attempts"] == 1


async def test_seed_validate_input_recipe(client, task_queue):
    doc = {"id": "validate-input", "steps": [
        code("validate-input", "if '@' not in (input.get('email') or ''):\n"
                               "    raise ValueError('Missing or invalid email')\nreturn {'valid': True}",
             continueOnError=True, retryPolicy={"maxRetries": 0}),
        {"stepId": "branch-on-validation", "stepType": "core.if", "input": {
            "condition": {"==": ["{{ validate-input.$meta.success }}", False]},
            "then": [{"stepId": "respond-bad-request", "stepType": "core.return", "input": {"webhookResponse": {
                "statusCode": 400, "body": {"error": "{{ validate-input.$meta.error.message }}"}}}}],
            "else": [{"stepId": "respond-ok", "stepType": "core.return",
                      "input": {"webhookResponse": {"statusCode": 200, "body": {"ok": True}}}}]}}]}
    bad = await run_flow(client, task_queue, doc, {"email": "nope"})
    assert bad["webhookResponse"]["statusCode"] == 400
    assert "Missing or invalid email" in bad["webhookResponse"]["body"]["error"]
    good = await run_flow(client, task_queue, doc, {"email": "a@b.c"})
    assert good["webhookResponse"] == {"statusCode": 200, "body": {"ok": True}}

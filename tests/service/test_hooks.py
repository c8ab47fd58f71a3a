"""Webhooks over real HTTP: key or signature, the run's webhookResponse, 202 on timeout, 502 on failure."""

from __future__ import annotations

import asyncio
import json
import time

from flowtide.service.hooks import sign
from tests.service.test_rest import assert_error
from tests.support.service import new_id

ANSWERS = {"steps": [{"stepId": "answer", "stepType": "core.return", "input": {
    "output": {"ignored": True},
    "webhookResponse": {"status": 201, "headers": {"x-hook": "yes"}, "body": {"echo": "{{ initial.msg }}"}}}}]}
PLAIN = {"steps": [{"stepId": "answer", "stepType": "core.return", "input": {"output": {"n": "{{ initial.n }}"}}}]}
SLOW = {"settings": {"webhook": {"timeoutSeconds": 0.5}}, "steps": [
    {"stepId": "hold", "stepType": "core.wait-for-signal", "input": {"signal": "go", "timeout": 30}},
    {"stepId": "answer", "stepType": "core.return", "input": {"output": 1}}]}
FAILS = {"steps": [
    {"stepId": "check", "stepType": "core.validate", "input": {"data": "x", "schema": {"type": "integer"},
                                                               "failOnInvalid": True}},
    {"stepId": "answer", "stepType": "core.return", "input": {"output": 1}}]}


async def _flow(api, http, doc) -> str:
    fid = new_id("hook")
    await api.deploy(http, {**doc, "id": fid})
    return fid


async def test_hook_answers_with_the_webhook_response_or_the_output(api, http):
    fid = await _flow(api, http, ANSWERS)
    r = await http.post(api.url(f"/v1/hooks/acme/{fid}"), json={"msg": "hi"}, headers=api.headers("run"))
    assert r.status_code == 201 and r.headers["x-hook"] == "yes" and r.json() == {"echo": "hi"}
    fid = await _flow(api, http, PLAIN)
    r = await http.post(api.url(f"/v1/hooks/acme/{fid}"), json={"n": 4}, headers=api.headers("run"))
    assert r.status_code == 200 and r.json() == {"n": 4}
    assert_error(await http.post(api.url(f"/v1/hooks/acme/{fid}"), json={}, headers=api.headers("read")),
                 403, "FORBIDDEN")


async def test_hook_202_after_its_timeout_and_502_for_a_failed_run(api, http):
    fid = await _flow(api, http, SLOW)
    t0 = time.monotonic()
    r = await http.post(api.url(f"/v1/hooks/acme/{fid}"), json={}, headers=api.headers("run"))
    assert r.status_code == 202 and set(r.json()) == {"runId", "workflowId"}
    assert time.monotonic() - t0 < 5
    await http.post(api.url(f"/v1/runs/{r.json()['runId']}/cancel"), headers=api.headers("run"))
    fid = await _flow(api, http, FAILS)
    r = await http.post(api.url(f"/v1/hooks/acme/{fid}"), json={}, headers=api.headers("run"))
    err = assert_error(r, 502, "VALIDATION_ERROR")
    assert err["extensions"]["runId"]


async def test_signatures(api, http):
    fid = await _flow(api, http, PLAIN)
    url = api.url(f"/v1/hooks/acme/{fid}")
    body = json.dumps({"n": 9}).encode()
    ctype = {"content-type": "application/json"}
    assert_error(await http.post(url, content=body, headers={**ctype, "x-flowtide-signature": sign("s", body)}),
                 401, "UNAUTHENTICATED")  # no secret set yet
    secret = await asyncio.to_thread(api.svc.store.set_hook_secret, "acme", fid)
    r = await http.post(url, content=body, headers={**ctype, "x-flowtide-signature": sign(secret, body)})
    assert r.status_code == 200 and r.json() == {"n": 9}
    refused = [
        sign("wrong-secret", body),
        sign(secret, body, int(time.time()) - 301),
        sign(secret, body, int(time.time()) + 301),
        "t=abc,v1=00",
        sign(secret, body).replace("v1=", "v1=0"),
    ]
    for header in refused:
        assert_error(await http.post(url, content=body, headers={**ctype, "x-flowtide-signature": header}),
                     401, "UNAUTHENTICATED")
    tampered = json.dumps({"n": 10}).encode()
    assert_error(await http.post(url, content=tampered, headers={**ctype, "x-flowtide-signature": sign(secret, body)}),
                 401, "UNAUTHENTICATED")
    assert_error(await http.post(url, content=body, headers=ctype), 401, "UNAUTHENTICATED")
    # another project's secret path: the signature of acme's flow does not open other's hook
    assert_error(await http.post(api.url(f"/v1/hooks/other/{fid}"), content=body,
                                 headers={**ctype, "x-flowtide-signature": sign(secret, body)}), 401, "UNAUTHENTICATED")


async def test_hook_idempotency_key_returns_the_same_run(api, http):
    fid = await _flow(api, http, SLOW)
    headers = {**api.headers("run"), "idempotency-key": new_id("k")}
    first = await http.post(api.url(f"/v1/hooks/acme/{fid}"), json={}, headers=headers)
    second = await http.post(api.url(f"/v1/hooks/acme/{fid}"), json={}, headers=headers)
    assert first.status_code == second.status_code == 202 and first.json() == second.json()
    await http.post(api.url(f"/v1/runs/{first.json()['runId']}/cancel"), headers=api.headers("run"))

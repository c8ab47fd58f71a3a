"""Holes found by the review of this round's hardening, each shown open before its fix.

- a flow could read the key that seals every connection (``{{ secrets.KEY }}``, a code step's ``env: [KEY]``);
- a backtracking pattern in a flow's input schema stalled the service on a rerun's input check;
- a 5,000-digit number or a YAML date in a body, a YAML date in a deployed flow, a NaN rerun input and a
  non-ASCII sign-in token answered 500;
- a webhook header value outside Latin-1 passed the header rule, then failed the answer.
"""

from __future__ import annotations

import httpx
import pytest

from flowtide.activities._secrets import resolve_secrets
from flowtide.activities._step import StepContext
from flowtide.activities.code import _resolve_env
from flowtide.client.rerun import payload_problems
from flowtide.workflows.errors import StepFailure
from flowtide.workflows.language import webhook_header_problem
from tests.support.rest_api import api_fixture, http_fixture
from tests.support.service import ECHO, Api, new_id

api = api_fixture("review")
http = http_fixture()


def test_no_flow_reads_the_sealing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWTIDE_SECRET_KEY", "the-key-that-seals-every-connection")
    monkeypatch.setenv("FLOWTIDE_SECRET_API", "a-flow-secret")
    assert resolve_secrets("{{ secrets.API }}", {}) == "a-flow-secret"
    with pytest.raises(StepFailure, match="reserved") as info:
        resolve_secrets("Bearer {{ secrets.KEY }}", {})
    assert info.value.code == "VALIDATION_ERROR"
    ctx = StepContext.__new__(StepContext)
    ctx.secrets = {}
    with pytest.raises(StepFailure, match="reserved"):
        _resolve_env(["KEY"], ctx)


@pytest.mark.timeout(20)
def test_a_backtracking_input_pattern_cannot_stall_a_rerun_check() -> None:
    schema = {"type": "object", "properties": {"x": {"type": "string", "pattern": "^(a+)+$"}}}
    [problem] = payload_problems(schema, {"x": "a" * 64 + "!"})  # 2**64 steps for a backtracking engine
    assert problem.path == "$.x"


def test_webhook_header_values_are_latin1_text() -> None:
    assert webhook_header_problem("X-Greeting", "caf\u00e9") is None
    assert "Latin-1" in str(webhook_header_problem("X-Price", "10 \u20ac"))
    assert "Latin-1" in str(webhook_header_problem("X-Bell", "a\x07b"))


async def test_odd_bodies_and_documents_are_400_or_kept_as_text(api: Api, http: httpx.AsyncClient) -> None:
    doc = {**ECHO, "id": new_id("rev")}
    await api.deploy(http, doc)
    r = await http.post(api.url(f"/v1/flows/{doc['id']}/runs"), content=b'{"input": ' + b"9" * 5000 + b"}",
                        headers={**api.headers("run"), "content-type": "application/json"})
    assert r.status_code == 400 and r.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST", r.text[:300]
    r = await http.put(api.url(f"/v1/flows/{doc['id']}"), content=b"name: x\nsteps: [a: 2024-13-01]\n",
                       headers={**api.headers("admin"), "content-type": "application/yaml"})
    assert r.status_code == 400, r.text[:300]
    dated = new_id("dated")
    yaml_doc = (f"id: {dated}\nname: 2024-01-01\nsteps:\n  - stepId: done\n    stepType: core.return\n"
                "    input: {output: 1}\n").encode()
    r = await http.put(api.url(f"/v1/flows/{dated}"), content=yaml_doc,
                       headers={**api.headers("admin"), "content-type": "application/yaml"})
    assert r.status_code == 201, r.text[:300]
    r = await http.get(api.url(f"/v1/flows/{dated}"), headers=api.headers("read"))
    assert r.status_code == 200 and r.json()["document"]["name"] == "2024-01-01", r.text[:300]


async def test_a_rerun_with_input_that_is_not_json_is_400(api: Api, http: httpx.AsyncClient) -> None:
    doc = {**ECHO, "id": new_id("nan")}
    await api.deploy(http, doc)
    run = (await http.post(api.url(f"/v1/flows/{doc['id']}/runs?wait=20"), json={"input": {"n": 1}},
                           headers=api.headers("run"))).json()
    r = await http.post(api.url(f"/v1/runs/{run['runId']}/rerun"), content=b'{"input": {"n": NaN}}',
                        headers={**api.headers("run"), "content-type": "application/json"})
    assert r.status_code == 400 and r.json()["errors"][0]["extensions"]["code"] == "INPUT_INVALID", r.text[:300]


async def test_a_non_ascii_signin_token_is_403(api: Api, http: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(base_url=api.base, timeout=30) as page:
        await page.get("/signin")
        r = await page.post("/signin", data={"key": api.keys["acme"]["read"], "next": "/runs", "csrf": "\u00e9\u0663"})
        assert r.status_code == 403, r.text[:300]


def test_connection_origins_are_origins() -> None:
    from flowtide.store.connection_checks import FieldError
    from flowtide.store.connections import split_values
    config, _ = split_values("bearer", {"token": "t", "origins": "https://API.example.com/, smtp://mail.example.com:587"})
    assert config["origins"] == ["https://api.example.com", "smtp://mail.example.com:587"]
    for bad in ("https://api.example.com/v1", "https://user@api.example.com", "api.example.com", "https://a?x=1"):
        with pytest.raises(FieldError, match="not an origin"):
            split_values("bearer", {"token": "t", "origins": [bad]})

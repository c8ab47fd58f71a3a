"""GraphQL hardening over real HTTP: request shape, document limits, and the key's rate limit per field."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from flowtide.service import limits
from flowtide.service.auth import RateLimiter
from tests.service import conftest as service
from tests.service.test_rest import assert_error
from tests.support.service import ECHO, new_id

api, http, plain_structlog = service.api, service.http, service.plain_structlog  # the service tests' fixtures
FLOWS = "{ flows { flowId } }"


async def post(api: Any, http: Any, body: Any, headers: dict[str, str] | None = None) -> Any:
    return await http.post(api.url("/graphql"), json=body, headers=headers or api.headers("run"))


@pytest.mark.parametrize("body", [
    [{"query": FLOWS}], "{ flows { flowId } }", 7, {}, {"query": None}, {"query": ""}, {"query": 12},
    {"query": ["{ flows { flowId } }"]}, {"query": FLOWS, "variables": []}, {"query": FLOWS, "variables": "x"},
    {"query": FLOWS, "operationName": 5}, {"query": FLOWS, "operationName": ["a"]},
    {"query": FLOWS, "operationName": {"a": 1}}, {"query": FLOWS, "operationName": True},
    {"query": FLOWS, "extensions": "x"}, {"query": "query A { flows { flowId } }", "operationName": "B"},
    {"query": "query A { flows { flowId } } query B { flows { title } }"},
    {"query": "query($n: Int!) { runs(first: $n) { nextCursor } }", "variables": {"n": "x"}},
])
async def test_a_body_of_the_wrong_shape_is_400(api, http, body):
    assert_error(await post(api, http, body), 400, "BAD_REQUEST")


async def test_other_methods_and_odd_requests_answer_in_the_error_shape(api, http):
    for params in ({}, {"query": FLOWS}, {"query": "%ff\x00"}, {"operationName": "x", "variables": "[[["}):
        r = await http.get(api.url("/graphql"), params=params, headers=api.headers("read"))
        assert r.status_code == 405 and r.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST", r.text
    r = await http.post(api.url("/graphql"), content=b"[" * 100_000 + b"]" * 100_000,
                        headers={**api.headers("read"), "content-type": "application/json"})
    assert r.status_code == 400 and "Traceback" not in r.text, r.text


def nested(levels: int) -> str:
    return "{ __schema { types { " + "fields { type { " * levels + "name" + " } }" * levels + " } } }"


@pytest.mark.parametrize(("query", "what"), [
    (nested(7), "deep"),  # introspection counts too: 17 levels
    ("{ " + " ".join(f"a{i}: flows {{ flowId }}" for i in range(limits.GRAPHQL_MAX_ALIASES + 1)) + " }", "aliases"),
    ("{ flows { " + "flowId " * limits.GRAPHQL_MAX_TOKENS + "} }", "tokens"),
    ("{ flows { flowId } }" + " " * limits.GRAPHQL_MAX_QUERY_CHARS, "characters"),
    (" ".join(f"query Q{i} {{ flows {{ flowId }} }}" for i in range(limits.GRAPHQL_MAX_OPERATIONS + 1)),
     "operations"),
    ("{ a " * 900 + "}" * 900, "deep"),
    ("query($v: String = " + "[" * 1900 + "]" * 1900 + ") { flows { flowId } }", "deep|tokens"),
    # fragments that double at every level: 2**30 fields if expanded, answered at once
    ("{ ...F0 } " + " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(30))
     + " fragment F30 on Query { a: flows { flowId } }", "aliases"),
])
async def test_documents_past_a_limit_are_400_input_invalid(api, http, query, what):
    loop = asyncio.get_running_loop()
    began = loop.time()
    err = assert_error(await post(api, http, {"query": query}), 400, "INPUT_INVALID")
    assert loop.time() - began < 5
    assert re.search(what, err["message"]), err


async def test_the_standard_introspection_query_and_a_deep_run_read_fit_the_limits(api, http):
    from graphql import get_introspection_query
    r = await post(api, http, {"query": get_introspection_query()}, api.headers("read"))
    assert r.status_code == 200 and r.json()["data"]["__schema"]["types"], r.text
    r = await post(api, http, {"query": "mutation { startRun(flowId: \"nope\") { run { steps { error { code } } } } }"})
    assert r.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND", r.text


async def count_runs(api: Any, http: Any, flow: str, expect: int) -> int:
    """The runs of ``flow`` the list API shows, once visibility has caught up with ``expect`` (or 3 s passed)."""
    seen = -1
    for _ in range(30):
        r = await http.get(api.url("/v1/runs"), params={"flowId": flow, "limit": 100}, headers=api.headers("admin"))
        seen = len(r.json()["runs"])
        if seen >= expect:
            await asyncio.sleep(0.5)  # any run beyond the expected ones would show up too
            r = await http.get(api.url("/v1/runs"), params={"flowId": flow, "limit": 100},
                               headers=api.headers("admin"))
            return len(r.json()["runs"])
        await asyncio.sleep(0.1)
    return seen


def starts(n: int, flow: str) -> str:
    return "mutation { " + " ".join(f"s{i}: startRun(flowId: \"{flow}\", input: {{n: {i}}}) {{ runId }}"
                                    for i in range(n)) + " }"


async def test_aliased_start_runs_count_against_the_keys_rate_limit(api, http, monkeypatch):
    fid = new_id("gl")
    await api.deploy(http, {**ECHO, "id": fid})
    monkeypatch.setattr(api.svc, "limiter", RateLimiter(api.svc.store, rate=0.01, burst=8, name=new_id("t")))
    # the reported attack: 200 aliased startRun in one request
    assert_error(await post(api, http, {"query": starts(200, fid)}), 400, "INPUT_INVALID")
    r = await post(api, http, {"query": starts(5, fid)})  # 5 of the 8 tokens
    assert r.status_code == 200 and len(r.json()["data"]) == 5, r.text
    r = await post(api, http, {"query": starts(5, fid)})  # 3 tokens left: refused as a whole
    err = assert_error(r, 429, "RATE_LIMITED")
    assert int(r.headers["retry-after"]) >= 1 and "calls" in err["message"]
    assert_error(await post(api, http, {"query": starts(9, fid)}), 400, "INPUT_INVALID")  # more than the burst
    monkeypatch.undo()  # the list API below is read with the usual allowance
    assert await count_runs(api, http, fid, 5) == 5


async def test_one_field_costs_one_call_like_rest(api, http, monkeypatch):
    monkeypatch.setattr(api.svc, "limiter", RateLimiter(api.svc.store, rate=0.01, burst=4, name=new_id("t")))
    q = "{ a: flows { flowId } b: flows { title } }"
    assert (await post(api, http, {"query": q}, api.headers("read"))).status_code == 200  # 2 tokens
    assert (await post(api, http, {"query": FLOWS}, api.headers("read"))).status_code == 200  # 1
    assert (await post(api, http, {"query": "{ __typename }"}, api.headers("read"))).status_code == 200  # 1
    assert_error(await post(api, http, {"query": FLOWS}, api.headers("read")), 429, "RATE_LIMITED")

"""Property tests: schemathesis sends generated requests over real HTTP: never a 5xx, every answer documented.

- every operation of /openapi.json, with data that fits the schema AND data that does not (negative mode);
- stateful sequences along the document's OpenAPI links (start a run, then read, signal, cancel, re-run it;
  deploy a flow, then read, list and run it);
- the runs page's routes (/runs, /runs/{runId}, /runs/{runId}/data, /flows, /signin, revert) with a session.

Bounded (a few examples per operation, a few short sequences) and derandomized: the same requests every run.
"""

from __future__ import annotations

import copy
import gc
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from flowtide.service.openapi import document
from flowtide.service.web.session import COOKIE
from tests.support.service import ECHO, WAITS, threaded_api
from tests.support.web import csrf

BOUNDED = settings(max_examples=6, deadline=None, derandomize=True, database=None,
                   suppress_health_check=list(HealthCheck))
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]

schema = schemathesis.openapi.from_dict(document())
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


def _stateful_document() -> dict[str, Any]:
    """The API's document with the flow ids of the deployed flows and the echo flow's input, so that the
    sequences reach real runs (random flow ids and inputs would stop at 404 and 400)."""
    doc = copy.deepcopy(document())
    doc["components"]["parameters"]["FlowId"]["schema"] = {"type": "string", "enum": ["echo", "waits"]}
    doc["components"]["schemas"]["StartBody"] = {"type": "object", "required": ["input"], "properties": {
        "input": {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}}}
    return doc


def _pages_document() -> dict[str, Any]:
    """The runs page's routes as OpenAPI (they answer HTML, so only "never a 5xx" is checked)."""
    html = {"200": {"description": "page"}, "default": {"description": "page, redirect or error page"}}

    def get(*params: dict[str, Any]) -> dict[str, Any]:
        return {"get": {"parameters": list(params), "responses": html}}

    def q(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"name": name, "in": "query", "schema": schema or {"type": "string"}}

    run_id = {"name": "runId", "in": "path", "required": True, "schema": {"type": "string"}}
    form = {"application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": {
        "key": {"type": "string"}, "next": {"type": "string"}, "csrf": {"type": "string"},
        "revision": {"type": "string"}, "fromFailed": {"type": "string"}}}}}
    post = {"requestBody": {"content": form}, "responses": html}
    return {"openapi": "3.1.0", "info": {"title": "pages", "version": "1"}, "paths": {
        "/runs": get(q("status"), q("runId"), q("flowId"), q("limit", {"type": "integer"}), q("cursor")),
        "/runs/{runId}": get(run_id),
        "/runs/{runId}/data": get(run_id, q("part"), q("step", {"type": "integer"}), q("pointer")),
        "/runs/{runId}/rerun": {**get(run_id, q("fromFailed")), "post": {**post, "parameters": [run_id]}},
        "/flows": get(q("reverted"), q("revision")),
        "/flows/{flowId}/revert": {"post": {**post, "parameters": [
            {"name": "flowId", "in": "path", "required": True, "schema": {"type": "string"}}]}},
        "/signin": {**get(q("next")), "post": post}}}


pages = schemathesis.openapi.from_dict(_pages_document())
pages.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


@pytest.fixture(scope="module")
def live(dev_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    # finalize what earlier modules left (sockets, transports) here: run after tests/security/test_rest_*.py,
    # a collection in the middle of Hypothesis' ast.parse of a lambda's module ended this test with CPython
    # 3.11's "AST constructor recursion depth mismatch" SystemError (3 runs of 3; none since this collect)
    gc.collect()
    db = Path(tmp_path_factory.mktemp("prop")) / "flowtide.db"
    rate = os.environ.get("FLOWTIDE_API_RATE")
    os.environ["FLOWTIDE_API_RATE"] = "10000"  # the rate limit has its own test: here it would only answer 429
    try:
        with threaded_api(dev_server.address, f"sqlite:///{db}") as (base, key):
            auth = {"authorization": f"Bearer {key}", "x-project-id": "acme"}
            for doc in (ECHO, WAITS):
                assert httpx.put(f"{base}/v1/flows/{doc['id']}", json=doc, headers=auth).status_code == 201
            with httpx.Client(base_url=base) as browser:  # the form's token and its nonce cookie, as a browser
                form = browser.get("/signin")
                signin = browser.post("/signin", data={"key": key, "next": "/runs", "csrf": csrf(form.text)})
            assert signin.status_code == 303
            yield {"base": base, "key": key, "cookie": f"{COOKIE}={signin.cookies[COOKIE]}"}
    finally:
        if rate is None:
            os.environ.pop("FLOWTIDE_API_RATE", None)
        else:
            os.environ["FLOWTIDE_API_RATE"] = rate


@schema.parametrize()
@BOUNDED
def test_every_answer_is_documented_and_none_is_a_5xx(case: Any, live: dict[str, str]) -> None:
    if case.headers and "x-project-id" in case.headers and case.meta.generation.mode == GenerationMode.POSITIVE:
        case.headers["x-project-id"] = "acme"  # a generated project id would only test the 403 path
    case.call_and_validate(base_url=live["base"], headers={"authorization": f"Bearer {live['key']}"}, timeout=70,
                           checks=CHECKS)


def test_stateful_sequences_along_the_links(live: dict[str, str]) -> None:
    machine = schemathesis.openapi.from_dict(_stateful_document()).as_state_machine()

    class Sequences(machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": live["base"], "timeout": 70,
                    "headers": {"authorization": f"Bearer {live['key']}", "x-project-id": "acme"}}

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS)

    Sequences.run(settings=settings(BOUNDED, max_examples=15, stateful_step_count=6))


@pages.parametrize()
@BOUNDED
def test_no_page_answers_a_5xx(case: Any, live: dict[str, str]) -> None:
    case.call_and_validate(base_url=live["base"], headers={"cookie": live["cookie"]}, timeout=70,
                           allow_redirects=False, checks=[not_a_server_error])

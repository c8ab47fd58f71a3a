"""Property test: hypothesis-graphql documents (valid and with one schema violation) and hostile request
envelopes sent to ``POST /graphql`` over real HTTP; no answer is a 5xx, and every error is in the service's shape.

Budget: derandomised, a few hundred requests, well under a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import graphql
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema, nodes

from flowtide.service.graphql import SCHEMA
from tests.support.service import ECHO, threaded_api

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


def _field(name: str, value: graphql.ValueNode) -> graphql.ObjectFieldNode:
    return graphql.ObjectFieldNode(name=graphql.NameNode(value=name), value=value)


SCALAR_NODES = st.one_of(st.integers(-(2**70), 2**70).map(nodes.Int), st.text(max_size=20).map(nodes.String),
                         st.booleans().map(nodes.Boolean), st.floats(allow_nan=False).map(nodes.Float))
JSON_NODES = st.one_of(SCALAR_NODES, st.lists(SCALAR_NODES, max_size=3).map(nodes.List),
                       SCALAR_NODES.map(lambda v: nodes.Object([_field("n", v)])))
SDL = str(SCHEMA)
DOCUMENTS = st.one_of(*(from_schema(SDL, custom_scalars={"JSON": JSON_NODES}, mode=mode)
                        for mode in (Mode.POSITIVE, Mode.NEGATIVE)))
JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                       | st.text(max_size=10),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                  max_size=3), max_leaves=8)


@pytest.fixture(scope="module")
def live(dev_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    db = tmp_path_factory.mktemp("gqlprop") / "flowtide.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FLOWTIDE_API_RATE", "100000")  # the rate limit has its own tests: here every request runs
        with threaded_api(dev_server.address, f"sqlite:///{db}") as (base, key):
            headers = {"authorization": f"Bearer {key}", "x-project-id": "acme"}
            assert httpx.put(f"{base}/v1/flows/echo", json=ECHO, headers=headers).status_code == 201
            yield base, headers


def check(r: httpx.Response) -> None:
    assert r.status_code < 500, (r.status_code, r.text[:2000])
    body = r.json()
    assert isinstance(body, dict) and ("data" in body or r.status_code >= 400), r.text[:2000]
    for err in body.get("errors") or []:
        assert err["message"] and err["extensions"]["code"] and err["extensions"]["requestId"], err
    if r.status_code >= 400:
        assert set(body) == {"errors"}, r.text[:2000]


@SETTINGS
@given(query=DOCUMENTS)
def test_generated_documents_never_answer_a_5xx(live: tuple[str, dict[str, str]], query: str) -> None:
    base, headers = live
    check(httpx.post(f"{base}/graphql", json={"query": query}, headers=headers, timeout=70))


@SETTINGS
@given(query=st.one_of(DOCUMENTS, st.text(max_size=200), JSONISH), variables=JSONISH,
       name=st.one_of(st.none(), st.text(max_size=10), JSONISH), extra=st.dictionaries(st.text(max_size=5), JSONISH))
def test_hostile_envelopes_never_answer_a_5xx(live: tuple[str, dict[str, str]], query: Any, variables: Any,
                                               name: Any, extra: dict[str, Any]) -> None:
    base, headers = live
    body = {**extra, "query": query, "variables": variables, "operationName": name}
    check(httpx.post(f"{base}/graphql", json=body, headers=headers, timeout=70))

"""Never a 500 for what a caller sends: numbers, cursors, revisions, signal names and ids over real HTTP.

Every number (query, form, header) is ASCII digits within bounds, through one parser; anything else is a
400 naming the parameter and its bounds. Each case here was a 500 (or a silent misreading) before.
"""

from __future__ import annotations

import asyncio
import base64
import json

import httpx

from tests.support.flows import any_of_bomb
from tests.support.rest_api import api_fixture, http_fixture
from tests.support.service import ECHO, WAITS, Api, new_id
from tests.support.web import csrf, sign_in_http

# '²' and '٣' pass str.isdigit() and int() takes '٣', '+1', ' 1' and '1_000': none is ASCII digits
ODD_NUMBERS = ["²", "٣", "+1", " 1", "1 ", "1_000", "-1", "0x10", "1e3", "\uff11", "9" * 5000, "nan", "inf", ""]


api = api_fixture("inputs")
http = http_fixture()


def bad_request(r: httpx.Response, *names: str) -> str:
    """The 400's message, which names every one of ``names``."""
    assert r.status_code == 400, (r.status_code, r.text[:300])
    err = r.json()["errors"][0]
    assert err["extensions"]["code"] == "BAD_REQUEST" and "Traceback" not in r.text
    for name in names:
        assert name in err["message"], err["message"]
    return str(err["message"])


async def test_query_numbers_are_ascii_digits_within_bounds(api: Api, http: httpx.AsyncClient) -> None:
    doc = {**ECHO, "id": new_id("num")}
    await api.deploy(http, doc)
    for odd in [*ODD_NUMBERS[:-1], "0", "101"]:
        bad_request(await http.get(api.url("/v1/runs"), params={"limit": odd}, headers=api.headers("read")),
                    "'limit'", "from 1 to 100")
    for odd in [*ODD_NUMBERS[:-1], "0", "2147483648"]:
        bad_request(await http.get(api.url(f"/v1/flows/{doc['id']}"), params={"revision": odd},
                                   headers=api.headers("read")), "'revision'", "from 1 to 2147483647")
    for odd in [*ODD_NUMBERS[:-1], "61", "1.", ".5", "1.5.5"]:
        bad_request(await http.post(api.url(f"/v1/flows/{doc['id']}/runs"), params={"wait": odd},
                                    json={"input": {"n": 1}}, headers=api.headers("run")), "'wait'", "from 0 to 60")
    r = await http.post(api.url(f"/v1/flows/{doc['id']}/runs"), params={"wait": "10.5"}, json={"input": {"n": 1}},
                        headers=api.headers("run"))
    assert r.status_code == 200 and r.json()["output"] == {"got": 1}
    r = await http.get(api.url("/v1/runs"), params={"limit": "2"}, headers=api.headers("read"))
    assert r.status_code == 200 and len(r.json()["runs"]) <= 2


async def test_revisions_in_bodies_are_bounded_integers(api: Api, http: httpx.AsyncClient) -> None:
    doc = {**ECHO, "id": new_id("rev")}
    await api.deploy(http, doc)
    for odd in [10**30, -1, 0, 2**31, "1", 1.0, True, None, [1]]:
        bad_request(await http.post(api.url(f"/v1/flows/{doc['id']}/revert"), json={"revision": odd},
                                    headers=api.headers()), "'revision'", "from 1 to 2147483647")
    run = (await http.post(api.url(f"/v1/flows/{doc['id']}/runs?wait=20"), json={"input": {"n": 1}},
                           headers=api.headers("run"))).json()
    for odd in [10**30, "abc", 0]:
        bad_request(await http.post(api.url(f"/v1/runs/{run['runId']}/rerun"), json={"revision": odd},
                                    headers=api.headers("run")), "'revision'")


async def test_forged_cursors_are_400(api: Api, http: httpx.AsyncClient) -> None:
    from flowtide.service.steer import _cursor
    doc = {**ECHO, "id": new_id("cur")}
    await api.deploy(http, doc)
    for n in range(3):
        await http.post(api.url(f"/v1/flows/{doc['id']}/runs?wait=20"), json={"input": {"n": n}},
                        headers=api.headers("run"))
    seen, cursor = [], None
    for _ in range(20):  # a real cursor pages on (visibility may lag a moment behind the runs)
        r = await http.get(api.url("/v1/runs"), params={"flowId": doc["id"], "limit": "1", **(
            {"cursor": cursor} if cursor else {})}, headers=api.headers("read"))
        assert r.status_code == 200, r.text
        seen += [run["runId"] for run in r.json()["runs"]]
        cursor = r.json()["nextCursor"]
        if cursor is None and len(seen) >= 3:
            break
        await asyncio.sleep(0 if cursor else 0.3)
    assert len(set(seen)) == 3
    forged = [base64.urlsafe_b64encode(raw).decode() for raw in (
        b"garbage", b"{}", json.dumps({"StartTime": "x", "RunID": 7}).encode(), b"\x00" * 64)]
    for bad in [*forged, "!!!", "a", "\u0663", "x" * 5000, "%00", "===="]:
        bad_request(await http.get(api.url("/v1/runs"), params={"cursor": bad}, headers=api.headers("read")),
                    "cursor")
    # rebuilt by someone who knows the format but not the replicas' shared key: refused before Temporal
    bad_request(await http.get(api.url("/v1/runs"), params={"cursor": _cursor(b"garbage", b"k" * 32)},
                               headers=api.headers("read")), "cursor")
    # with the right key (a bug of ours, say): Temporal itself refuses the token, and that is a 400 too
    key = await api.svc.shared_key("cursor")
    bad_request(await http.get(api.url("/v1/runs"), params={"cursor": _cursor(b"garbage", key)},
                               headers=api.headers("read")), "cursor")


async def test_signal_names_follow_temporal_limits(api: Api, http: httpx.AsyncClient) -> None:
    doc = {**WAITS, "id": new_id("sig")}
    await api.deploy(http, doc)
    run = (await http.post(api.url(f"/v1/flows/{doc['id']}/runs"), headers=api.headers("run"))).json()
    base = f"/v1/runs/{run['runId']}/signals/"
    for name, rule in (("a" * 1001, "1000 bytes"), ("é" * 501, "1000 bytes"), ("go%00", "control"),
                       ("go%0Ad", "control"), ("%7F", "control"), ("%1B[31m", "control"),
                       # the engine's own: a caller posing as a child run that reports its status
                       ("__flowtide.childStatus", "reserved"), ("__temporal_workflow_metadata", "reserved")):
        bad_request(await http.post(api.url(base + name), json={}, headers=api.headers("run")), "signal name", rule)
    r = await http.post(api.url(base + "go"), json={}, headers=api.headers("run"))
    assert r.status_code == 202, r.text


async def test_flow_ids_in_paths_are_bounded(api: Api, http: httpx.AsyncClient) -> None:
    long_id = "f" * 129
    for method, path in (("PUT", f"/v1/flows/{long_id}"), ("GET", f"/v1/flows/{long_id}"),
                         ("GET", f"/v1/flows/{long_id}/revisions"), ("POST", f"/v1/flows/{long_id}/revert"),
                         ("POST", f"/v1/flows/{long_id}/runs"), ("GET", "/v1/flows/%C2%B2"),
                         ("GET", "/v1/flows/-x"), ("POST", f"/v1/hooks/acme/{long_id}")):
        r = await http.request(method, api.url(path), json={**ECHO, "id": long_id} if method == "PUT" else {},
                               headers=api.headers())
        bad_request(r, "'flowId'", "128")
    r = await http.post(api.url(f"/v1/hooks/{'p' * 65}/echo"), json={}, headers=api.headers("run"))
    bad_request(r, "'projectId'", "64")


async def sign_in(page: httpx.AsyncClient, api: Api) -> None:
    r = await sign_in_http(page, api.keys["acme"]["admin"])
    assert r.status_code == 303


async def test_page_numbers_use_the_same_parser(api: Api, http: httpx.AsyncClient) -> None:
    doc = {**ECHO, "id": new_id("pg")}
    await api.deploy(http, doc)
    run = (await http.post(api.url(f"/v1/flows/{doc['id']}/runs?wait=20"), json={"input": {"n": 1}},
                           headers=api.headers("run"))).json()
    async with httpx.AsyncClient(base_url=api.base, timeout=30) as page:
        await sign_in(page, api)
        for odd in ("²", "٣", "9" * 5000, "0"):
            r = await page.get("/runs", params={"limit": odd})
            assert r.status_code == 400 and "limit" in r.text, (odd, r.status_code)
            r = await page.get(f"/runs/{run['runId']}/data", params={"part": "output", "step": odd})
            assert r.status_code == 404, (odd, r.status_code)
        listed = {"id": new_id("list"), "steps": [{"stepId": "answer", "stepType": "core.return",
                                                   "input": {"output": [10, 20]}}]}
        await api.deploy(http, listed)
        ran = (await http.post(api.url(f"/v1/flows/{listed['id']}/runs?wait=20"), json={},
                               headers=api.headers("run"))).json()
        for pointer, status in (("/1", 200), ("/\u00b2", 404), ("/\u0663", 404), ("/01x", 404),
                                ("/" + "9" * 5000, 404)):
            r = await page.get(f"/runs/{ran['runId']}/data", params={"part": "output", "step": "1", "pointer": pointer})
            assert r.status_code == status, (pointer[:10], r.status_code, r.text[:200])
        html = (await page.get("/flows")).text
        token = csrf(html)
        for odd in ("²", "٣", "9" * 5000, "0", "1_0"):
            r = await page.post(f"/flows/{doc['id']}/revert", data={"csrf": token, "revision": odd})
            assert r.status_code == 400 and "revision" in r.text, (odd, r.status_code)
        r = await page.post(f"/flows/{'f' * 200}/revert", data={"csrf": token, "revision": "1"})
        assert r.status_code == 400 and "flowId" in r.text


async def test_a_non_ascii_csrf_token_is_403(api: Api, http: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(base_url=api.base, timeout=30) as page:
        await sign_in(page, api)
        for path in ("/flows/echo/revert", "/runs/whatever/rerun", "/signout"):
            r = await page.post(path, data={"csrf": "\u00e9\u0663", "revision": "1"})
            assert r.status_code == 403 and "stale" in r.text, (path, r.status_code, r.text[:200])


async def test_a_yaml_body_nested_thousands_deep_is_refused_before_it_is_parsed(api: Api,
                                                                               http: httpx.AsyncClient) -> None:
    # PyYAML takes seconds over a megabyte of open brackets, on the API's event loop
    r = await http.put(api.url(f"/v1/flows/{new_id('deep')}"), content="[" * 500_000,
                       headers={**api.headers("admin"), "content-type": "application/yaml"})
    assert "nests deeper than" in bad_request(r)


async def test_an_exponential_input_schema_is_a_400_and_the_service_answers_meanwhile(
        api: Api, http: httpx.AsyncClient) -> None:
    doc = {"id": new_id("bomb"), "input": any_of_bomb(),
           "steps": [{"stepId": "s", "stepType": "core.return", "input": {"output": 1}}]}
    await api.deploy(http, doc)
    start = http.post(api.url(f"/v1/flows/{doc['id']}/runs"), json={"input": 1}, headers=api.headers("run"))
    health = http.get(api.url("/healthz"))
    r, h = await asyncio.gather(start, health)
    assert h.status_code == 200
    assert r.status_code == 400 and r.json()["errors"][0]["extensions"]["code"] == "INPUT_INVALID", r.text[:300]
    assert "250,000 evaluations" in r.text

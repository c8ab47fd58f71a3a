"""The pages over real HTTP: sign-in and its cookie, CSP on every answer, project scoping, roles, CSRF, revert."""

from __future__ import annotations

import asyncio
import html
import re
import uuid
from typing import Any

import httpx
import pytest

from flowtide.service.web.headers import CSP
from tests.support.service import ECHO, new_id
from tests.support.web import HOSTILE, csrf, sign_in_http, signin_token, start


async def signed_in(site: Any, role: str = "admin", project: str = "acme") -> httpx.AsyncClient:
    http = httpx.AsyncClient(base_url=site.base, timeout=30)
    r = await sign_in_http(http, site.keys[project][role])
    assert r.status_code == 303 and r.headers["location"] == "/runs"
    return http


@pytest.fixture(scope="module")
async def echo_run(site: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as http:
        doc = {**ECHO, "id": new_id("echo"), "name": HOSTILE}
        await site.deploy(http, doc)
        run = await start(site, http, doc["id"], {"n": 1}, wait=20)
        return {"runId": run["runId"], "flowId": doc["id"]}


async def test_sign_in_cookie_and_headers(site):
    async with httpx.AsyncClient(base_url=site.base, timeout=30) as http:
        r = await http.get("/runs?status=failed")
        assert r.status_code == 303 and r.headers["location"] == "/signin?next=%2Fruns%3Fstatus%3Dfailed"
        token = await signin_token(http)
        r = await http.post("/signin", data={"key": "ftk_wrong", "next": "/runs", "csrf": token})
        assert r.status_code == 401 and "unknown or revoked" in r.text
        r = await http.post("/signin", data={"key": site.keys["acme"]["read"], "next": "//evil.example/x",
                                             "csrf": token})
        assert r.status_code == 303 and r.headers["location"] == "/runs"  # never an open redirect
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict") and "Path=/" in cookie
        assert site.keys["acme"]["read"] not in cookie
        for path in ("/runs", "/flows", "/static/app.js", "/static/app.css", "/signin", "/v1/flows", "/nope"):
            h = (await http.get(path)).headers
            assert h["content-security-policy"] == CSP and h["x-content-type-options"] == "nosniff", path
        assert "script-src 'self';" in CSP and "unsafe-inline" not in CSP
        page = (await http.get("/runs")).text
        await http.post("/signout", data={"csrf": csrf(page)})
        assert (await http.get("/runs")).status_code == 303


async def test_runs_list_pages_and_filters(site, echo_run):
    async with httpx.AsyncClient(timeout=30) as api_http:
        second = await start(site, api_http, echo_run["flowId"], {"n": 2}, wait=20)
    http = await signed_in(site, "read")
    first = await http.get(f"/runs?flowId={echo_run['flowId']}&limit=1")
    assert first.status_code == 200 and second["runId"][:8] in first.text  # newest first
    nxt = re.search(r'href="([^"]+)" rel="next"', first.text).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    page2 = await http.get(nxt)
    assert echo_run["runId"] in page2.text and second["runId"] not in page2.text and "First page" in page2.text
    by_prefix = await http.get(f"/runs?runId={echo_run['runId'][:13]}")
    assert echo_run["runId"] in by_prefix.text and second["runId"] not in by_prefix.text
    bad = await http.get("/runs?status=bogus")
    assert bad.status_code == 400 and "unknown status" in bad.text
    await check_time_and_code_filters(http, echo_run, second)
    await http.aclose()


async def check_time_and_code_filters(http: httpx.AsyncClient, echo_run: dict[str, Any],
                                      second: dict[str, Any]) -> None:
    """Start time range, error code, counts per status: each a visibility query; bad values a clear 400."""
    flow = echo_run["flowId"]
    page = (await http.get(f"/runs?flowId={flow}")).text
    assert re.search(r'aria-current="true">All <span class="n">2</span>', page), "counts of this flow's runs"
    assert re.search(r'Completed</span> <span class="n">2</span>', page)
    assert re.search(r"<time datetime=\S+\+00:00\" title=\"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\">", page)
    later = (await http.get(f"/runs?flowId={flow}&from=2999-01-01T00:00")).text
    assert "No runs match." in later and echo_run["runId"] not in later
    earlier = (await http.get(f"/runs?flowId={flow}&from=2020-01-01T00:00&to=2999-01-01T00:00")).text
    assert echo_run["runId"] in earlier and second["runId"] in earlier
    coded = (await http.get(f"/runs?flowId={flow}&errorCode=HTTP_RATE_LIMITED")).text
    assert "No runs match." in coded
    for query, says in (("from=yesterday", "filter 'from': 'yesterday' is not a date and time"),
                        ("from=0001-01-01T00:00%2B14:00", "filter 'from': '0001-01-01T00:00+14:00' is not a date"),
                        ("to=9999-12-31T23:59-10:00", "filter 'to': '9999-12-31T23:59-10:00' is not a date"),
                        ("errorCode=a%20b", "error code 'a b' may only hold"),
                        ("errorCode=" + "A" * 5000, "(at most 300)"),
                        ("flowId=" + "f" * 5000, "(at most 300)")):
        r = await http.get(f"/runs?{query}")
        assert r.status_code == 400 and says in html.unescape(r.text), r.text


async def test_project_scoping_roles_and_csrf(site, echo_run):
    rid = echo_run["runId"]
    other = await signed_in(site, "admin", "other")
    assert (await other.get(f"/runs/{rid}")).status_code == 404
    assert (await other.get(f"/runs/{rid}/data?step=1&part=output")).status_code == 404
    assert rid not in (await other.get("/runs")).text  # (short ids of the same minute are alike: the whole id)
    await other.aclose()
    reader = await signed_in(site, "read")
    page = await reader.get(f"/runs/{rid}")
    assert page.status_code == 200 and "Re-run" not in page.text
    assert (await reader.get(f"/runs/{rid}/rerun")).status_code == 403
    r = await reader.post(f"/flows/{echo_run['flowId']}/revert", data={"csrf": csrf(page.text), "revision": "1"})
    assert r.status_code == 403
    await reader.aclose()
    runner = await signed_in(site, "run")
    r = await runner.post(f"/runs/{rid}/rerun", data={"fromFailed": "0"})
    assert r.status_code == 403 and "stale" in r.text  # no CSRF token, nothing started
    await runner.aclose()


async def test_flows_page_reverts_and_escapes(site, echo_run):
    admin = await signed_in(site)
    page = (await admin.get("/flows")).text
    assert "<script>window.pwned" not in page and "&lt;script&gt;window.pwned" in page  # the flow's name
    async with httpx.AsyncClient(timeout=30) as api_http:
        await site.deploy(api_http, {**ECHO, "id": echo_run["flowId"], "name": "second"})
    page = (await admin.get(f"/flows/{echo_run['flowId']}")).text
    assert "<script>window.pwned" not in page and "&lt;script&gt;window.pwned" in page  # in the document too
    assert "Revert to revision 1" in page and "Revert to revision 2" not in page  # 2 is deployed
    r = await admin.post(f"/flows/{echo_run['flowId']}/revert", data={"csrf": csrf(page), "revision": "1"})
    assert r.status_code == 303
    done = (await admin.get(r.headers["location"])).text
    assert f"Flow {echo_run['flowId']}: revision 3 deployed." in done
    revs = (await admin.get(f"/v1/flows/{echo_run['flowId']}/revisions", headers=site.headers("read"))).json()
    assert [x["revision"] for x in revs["revisions"]] == [3, 2, 1]
    key_id = next(k["id"] for k in site.svc.store.list_keys("acme") if k["name"] == "acme-admin")
    site.svc.store.revoke_key(key_id)
    r = await admin.get("/runs")
    assert r.status_code == 303 and r.headers["location"].startswith("/signin")  # a revoked key signs out
    await admin.aclose()


async def test_a_connection_that_needs_reauthorization_is_an_alert_on_the_pages(site, monkeypatch):
    from flowtide.store.connections import Connections
    monkeypatch.setenv("FLOWTIDE_SECRET_KEY", "web-alert-test-key-" + "x" * 32)
    conns = Connections(site.svc.store)
    name = f"crm-{uuid.uuid4().hex[:6]}"
    await asyncio.to_thread(conns.add, name, "bearer", {"token": "t0k3n-not-shown"}, "other")
    http = await signed_in(site, "read")
    try:
        assert "Reauthorization needed" not in (await http.get("/runs")).text
        other = Connections(site.svc.store, "other")  # a connection's state is its owner's row
        await asyncio.to_thread(other.mark_error, name, "invalid_grant: refresh token revoked")
        page = (await http.get("/runs")).text
        assert "Reauthorization needed" not in page  # another project's connection is not this project's alert
        await asyncio.to_thread(conns.remove, name, "other")
        await asyncio.to_thread(conns.add, name, "bearer", {"token": "t0k3n-not-shown"}, "acme")
        acme = Connections(site.svc.store, "acme")
        await asyncio.to_thread(acme.mark_error, name, "invalid_grant: refresh token revoked")
        for path in ("/runs", "/flows"):
            page = (await http.get(path)).text
            assert "Reauthorization needed" in page and name in page and "invalid_grant" in page, path
            assert f"flowtide connections reconnect {name} --project acme" in page, path  # its owner fixes it
            assert f"PUT /v1/connections/{name}" in page and "t0k3n-not-shown" not in page
    finally:
        await http.aclose()

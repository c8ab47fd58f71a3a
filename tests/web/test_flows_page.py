"""The flows pages over real HTTP and in Chromium: health per flow (runs of 24 h by status, the last failure),
a flow's highlighted document, its revision history, the diff between two revisions, revert; screenshots."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.service import new_id
from tests.support.web import axe_violations, csrf, sign_in, sign_in_http, start, until

DOCS_IMG = Path(__file__).parent.parent.parent / "docs" / "img"


def _flow(flow_id: str, fail: bool) -> dict[str, Any]:
    """Revision 1 returns; revision 2 adds a check that fails (the change that introduced the failure)."""
    steps: list[dict[str, Any]] = [
        {"stepId": "fetch", "title": "Fetch the order", "stepType": "core.code",
         "input": {"script": "return {'order': 7, 'total': 12.5}"}}]
    if fail:
        steps.append({"stepId": "check-stock", "title": "Check stock", "stepType": "core.code",
                      "retryPolicy": {"maxRetries": 0}, "input": {"script": "raise ValueError('out of stock')"}})
    steps.append({"stepId": "done", "stepType": "core.return", "input": {"output": {"ok": True, "express": False}}})
    return {"id": flow_id, "name": "Order intake", "steps": steps}


@pytest.fixture(scope="module")
async def changed_flow(site: Any) -> dict[str, Any]:
    """A flow whose revision 1 completed a run and whose revision 2 failed one."""
    fid = new_id("intake")
    async with httpx.AsyncClient(timeout=60) as http:
        await site.deploy(http, _flow(fid, fail=False))
        ok = await start(site, http, fid, {}, wait=30)
        await site.deploy(http, _flow(fid, fail=True))
        bad = await start(site, http, fid, {}, wait=30)
    assert ok["status"] == "completed" and bad["status"] == "failed", (ok, bad)
    code = bad["error"]["code"] if bad.get("error") else bad["errors"][0]["code"]
    return {"flowId": fid, "failedRun": bad["runId"], "code": code}


async def _client(site: Any, role: str = "admin") -> httpx.AsyncClient:
    http = httpx.AsyncClient(base_url=site.base, timeout=30)
    assert (await sign_in_http(http, site.keys["acme"][role])).status_code == 303
    return http


async def test_overview_says_revision_runs_by_status_and_last_failure(site, changed_flow):
    http = await _client(site, "read")
    fid = changed_flow["flowId"]

    async def row() -> str | None:
        page = (await http.get("/flows")).text
        m = re.search(rf'<tr>\s*<td data-label="Flow"><span><a href="/flows/{fid}">.*?</tr>', page, re.S)
        return m.group(0) if m and "2 runs" in m.group(0) else None
    found = await until(row, 20)
    assert found, "the flow's row never counted its two runs"
    text = re.sub(r"<[^>]+>", "", found)
    assert "revision 2" in text and "2 runs: 1 completed, 1 failed" in text
    assert changed_flow["code"] in text and "at step check-stock" in text and "(revision 2)" in text
    assert '<svg class="bar" aria-hidden="true"' in found and found.count("<rect ") == 2
    await http.aclose()


async def test_flow_page_document_history_diff_and_revert(site, changed_flow):
    fid = changed_flow["flowId"]
    reader = await _client(site, "read")
    page = (await reader.get(f"/flows/{fid}")).text
    assert "Document: revision 2 (deployed)" in page
    assert '<span class="t-key">stepType</span>' in page and '<span class="t-lit">false</span>' in page
    # the default diff: the deployed revision against the one before, the new step as added lines
    assert "Changes from revision 1 to revision 2" in page
    added = re.findall(r'<tr class="d-added">.*?<pre>(.*?)</pre>', page, re.S)
    assert any("check-stock" in line for line in added) and not re.findall(r'<tr class="d-removed">', page)
    runs = re.search(r'<td data-label="Revision"><span>2 \(deployed\)</span></td>.*?</tr>', page, re.S)
    assert runs and '<td data-label="Runs">1</td><td data-label="Failed">1</td>' in runs.group(0)
    assert "Revert to revision" not in page and "Reverting needs a key with role admin" in page
    r = await reader.post(f"/flows/{fid}/revert", data={"csrf": csrf(page), "revision": "1"})
    assert r.status_code == 403
    as_json = (await reader.get(f"/flows/{fid}?revision=1&format=json")).text
    assert "Document: revision 1" in as_json and '<span class="t-key">&#34;stepId&#34;</span>' in as_json
    same = (await reader.get(f"/flows/{fid}?from=2&to=2")).text
    assert "No differences: revisions 2 and 2 hold the same document." in same
    for bad, status in (("?format=xml", 400), ("?revision=9", 404), ("?from=0", 400), ("?to=x", 400)):
        assert (await reader.get(f"/flows/{fid}{bad}")).status_code == status, bad
    assert (await reader.get("/flows/no-such-flow")).status_code == 404
    await reader.aclose()

    admin = await _client(site)
    page = (await admin.get(f"/flows/{fid}")).text
    assert "Revert to revision 1" in page and "Revert to revision 2" not in page
    r = await admin.post(f"/flows/{fid}/revert", data={"csrf": csrf(page), "revision": "1"})
    assert r.status_code == 303 and r.headers["location"] == f"/flows/{fid}?reverted=3"
    done = (await admin.get(r.headers["location"])).text
    assert f"Flow {fid}: revision 3 deployed." in done and "Document: revision 3 (deployed)" in done
    # revision 1's document is the deployed one now: reverting to it again deploys nothing
    r = await admin.post(f"/flows/{fid}/revert", data={"csrf": csrf(done), "revision": "1"})
    assert r.headers["location"] == f"/flows/{fid}?reverted=3&unchanged=1"
    assert "Revision 3 already holds that document: nothing deployed." in (await admin.get(r.headers["location"])).text
    r = await admin.post(f"/flows/{fid}/revert", data={"revision": "1"})
    assert r.status_code == 403  # no CSRF token
    await admin.aclose()


async def shot(page: Any, name: str) -> None:
    """Screenshots for docs/runs.md, written when FLOWTIDE_SCREENSHOTS=1 (they are committed)."""
    if os.environ.get("FLOWTIDE_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(exist_ok=True)
        await page.screenshot(path=str(DOCS_IMG / name), full_page=True)


@pytest.mark.parametrize("width", [1280, 390])
async def test_flows_pages_in_chromium(site, browser, changed_flow, width):
    ctx = await browser.new_context(viewport={"width": width, "height": 900 if width > 400 else 844},
                                    bypass_csp=True)  # to inject axe-core
    ctx.set_default_timeout(10_000)
    page = await ctx.new_page()
    await sign_in(page, site, then="/flows")
    assert await page.locator("table.flows").count() == 1
    await shot(page, f"flows-{width}.png")
    assert await axe_violations(page) == []
    assert await page.evaluate("document.documentElement.scrollWidth") <= width + 10
    await page.get_by_role("link", name=changed_flow["flowId"], exact=True).click()
    await page.wait_for_url(f"**/flows/{changed_flow['flowId']}")
    await page.get_by_label("From", exact=True).select_option("1")
    await page.get_by_label("To", exact=True).select_option("2")
    await page.get_by_role("button", name="Compare").click()
    await page.wait_for_url("**from=1&to=2*")
    assert await page.locator("table.diff tr.d-added").count() >= 5
    await page.locator("#diff-h").scroll_into_view_if_needed()
    await shot(page, f"flow-diff-{width}.png")
    assert await axe_violations(page) == []
    assert await page.evaluate("document.documentElement.scrollWidth") <= width + 10
    await ctx.close()

"""The run page's pictures and waits in headless Chromium, on real runs: the graph, the timeline, a run waiting
for a signal sent from the page, a completed-with-errors run, a long loop; axe-core on each; the screenshots
of docs/runs.md (``FLOWTIDE_SCREENSHOTS=1``)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.support.service import new_id
from tests.support.web import axe_violations, shot, sign_in, sign_in_http, start, until

APPROVAL = {"name": "Approve a refund", "steps": [
    {"stepId": "amount", "stepType": "core.set-variable", "input": {"amount": "{{ initial.amount }}"}},
    {"stepId": "big", "title": "Big refund?", "stepType": "core.if",
     "input": {"condition": "{{ initial.amount }} > 100",
               "then": [{"stepId": "approve", "title": "Wait for approval", "stepType": "core.wait-for-signal",
                         "input": {"signal": "approve", "timeout": 120}}],
               "else": [{"stepId": "auto", "stepType": "core.set-variable", "input": {"auto": True}}]}},
    {"stepId": "pay", "stepType": "core.return", "input": {"output": {"approved": "{{ approve.output }}"}}}]}
PARTLY = {"steps": [
    {"stepId": "notify", "title": "Notify (best effort)", "stepType": "core.code", "continueOnError": True,
     "retryPolicy": {"maxRetries": 0}, "input": {"script": "raise ValueError('mail server down')"}},
    {"stepId": "done", "stepType": "core.return", "input": {"output": {"ok": True}}}]}
LOOP = {"steps": [
    {"stepId": "each", "title": "Ship each order", "stepType": "core.for-each",
     "input": {"items": 450, "concurrency": 50,
               "steps": [{"stepId": "ship", "stepType": "core.set-variable", "input": {"n": "{{ item }}"}}]}},
    {"stepId": "done", "stepType": "core.return", "input": {"output": {"ok": True}}}]}


async def deployed_run(site: Any, http: httpx.AsyncClient, doc: dict[str, Any], payload: Any,
                       wait: int = 0) -> dict[str, Any]:
    flow = {**doc, "id": new_id("pic")}
    await site.deploy(http, flow)
    return await start(site, http, flow["id"], payload, wait=wait)


@pytest.fixture(scope="module")
async def runs(site: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=90) as http:
        partly = await deployed_run(site, http, PARTLY, {}, wait=40)
        assert partly["status"] == "completed_with_errors", partly
        loop = await deployed_run(site, http, LOOP, {}, wait=60)
        assert loop["status"] == "completed", loop
        waiting = await deployed_run(site, http, APPROVAL, {"amount": 250})
    return {"partly": partly["runId"], "loop": loop["runId"], "waiting": waiting["runId"]}


async def check_axe_and_width(page: Any, name: str) -> None:
    assert await axe_violations(page) == [], name
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"] + 10, f"{name} scrolls sideways ({width} px)"


async def test_waiting_run_says_what_it_waits_for_and_takes_the_signal(site, browser, runs):
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)  # to inject axe
    page = await ctx.new_page()
    await sign_in(page, site, role="run", then=f"/runs/{runs['waiting']}")
    heading = page.locator(".waiting h2")
    await heading.wait_for(timeout=20_000)
    assert (await heading.inner_text()).strip() == "Waiting for signal approve"
    assert re.match(r"The run is waiting for signal `approve` since \d\d:\d\d:\d\d UTC \(.+\): step approve\.",
                    await page.locator(".wait-text").inner_text())
    assert "Waiting for signal" in await page.locator("h1 .badge").inner_text()
    step = page.locator("li.step", has=page.locator("summary", has_text="Wait for approval"))
    assert "Waiting for signal" in await step.locator(".badge").inner_text()
    await step.locator("details > summary").first.click()
    body = await step.inner_text()
    assert "0 attempts" not in body and "Running" not in body and "waiting for signal `approve`" in body
    graph = page.locator("svg.graph")
    assert await graph.get_attribute("role") == "img"
    assert (await graph.locator("title").first.text_content() or "").startswith("Flow pic-")
    assert await graph.locator(".node-paused").count() == 1, "the awaited step is drawn waiting"
    await shot(page, "run-waiting-1280.png")
    await check_axe_and_width(page, "waiting run")
    # a payload that is not JSON: a clear error, nothing sent
    await page.get_by_label("Payload").fill("{approved: yes}")
    await page.get_by_role("button", name="Send signal approve").click()
    assert "payload: not valid JSON at line 1, column 2" in await page.locator("main").inner_text()
    await page.go_back()
    await page.get_by_label("Payload").fill('{"approved": true, "by": "dana"}')
    await page.get_by_role("button", name="Send signal approve").click()
    await page.wait_for_url("**signalled=approve")
    assert await page.get_by_role("status").inner_text() == "Signal approve sent."
    async with httpx.AsyncClient(timeout=30) as http:
        async def ended() -> Any:
            r = await http.get(site.url(f"/v1/runs/{runs['waiting']}"), headers=site.headers("read"))
            return r.json() if r.json()["status"] == "completed" else None
        record = await until(ended, 20)
    assert record and record["output"]["approved"]["data"] == {"approved": True, "by": "dana"}
    await ctx.close()


async def test_signal_form_needs_role_run_and_its_csrf_token(site, browser, runs):
    async with httpx.AsyncClient(base_url=site.base, timeout=30) as http:
        await sign_in_http(http, site.keys["acme"]["read"], then=f"/runs/{runs['partly']}")
        page = (await http.get(f"/runs/{runs['partly']}")).text
        assert "signal-form" not in page
        r = await http.post(f"/runs/{runs['partly']}/signal", data={"signal": "approve", "payload": "",
                                                                   "csrf": "x"})
        assert r.status_code == 403
    async with httpx.AsyncClient(base_url=site.base, timeout=30) as http:  # role run, but a forged form
        await sign_in_http(http, site.keys["acme"]["run"])
        r = await http.post(f"/runs/{runs['partly']}/signal", data={"signal": "approve", "csrf": "forged"})
        assert r.status_code == 403 and "the form is stale or came from another site" in r.text


@pytest.mark.parametrize("width", [1280, 390])
async def test_pictures_of_runs_at_both_widths(site, browser, runs, width):
    ctx = await browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
    page = await ctx.new_page()
    await sign_in(page, site)
    await check_axe_and_width(page, "runs list")
    counts = await page.get_by_role("navigation", name="Run counts").inner_text()
    assert re.search(r"Completed with errors \d+", counts), counts
    ids = await page.locator("a.run-id").all_inner_texts()
    assert len(set(ids)) == len(ids) and all(len(i) >= 8 for i in ids), "an id per run, unique on the page"
    assert await page.locator("table.runs time").first.get_attribute("title") is not None
    # completed with errors: the absorbed failure is on the graph, the list has its failed step and code
    await page.goto(site.url(f"/runs/{runs['partly']}"))
    assert "Completed with errors" in await page.locator("h1 .badge").inner_text()
    assert await page.locator("svg.graph .node-failed").count() == 1
    await shot(page, f"run-completed-with-errors-{width}.png")
    await check_axe_and_width(page, "completed-with-errors run")
    # the long loop: rows in pages, the loop frame on the graph, a lane per item on the timeline
    await page.goto(site.url(f"/runs/{runs['loop']}"))
    assert await page.locator("svg.graph .loop-frame").count() == 1
    pager = await page.get_by_role("navigation", name="Pages of steps (top)").inner_text()
    assert pager.startswith("Rows 1 to 200 of "), pager
    await shot(page, f"run-long-loop-{width}.png")
    await shot(page, f"run-graph-{width}.png", "figure.picture")
    await shot(page, f"run-timeline-{width}.png", "figure.picture >> nth=1")
    await check_axe_and_width(page, "long loop")
    await page.get_by_role("navigation", name="Pages of steps (top)").get_by_role("link", name="Next").click()
    await page.wait_for_url("**rows=2*")
    assert (await page.locator("ol.timeline > li").count()) == 200
    timing = (await page.request.get(site.url(f"/runs/{runs['loop']}"))).headers["server-timing"]
    print(f"{width} px: the 450-item loop's page, {timing} (ms, the page's own time after Temporal answered)")
    # a node of the graph opens its row
    await page.goto(site.url(f"/runs/{runs['loop']}"))
    await page.locator("svg.graph g.step-node[data-step='done']").click()
    assert await until(lambda: page.evaluate(
        "document.querySelector(location.hash) && document.querySelector(location.hash).open"))
    await ctx.close()

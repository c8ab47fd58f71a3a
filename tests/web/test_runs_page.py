"""The runs page in headless Chromium: seed 001's walk through a failed run, refresh, keyboard, axe-core."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.support.service import new_id
from tests.support.web import BIG, axe_violations, orders, retrying, shot, sign_in, start, until


@pytest.fixture(scope="module")
async def failed_run(site: Any, service: Any) -> dict[str, Any]:
    """A failed run of ``orders`` and a completed run of another flow, in project acme."""
    async with httpx.AsyncClient(timeout=60) as http:
        flow = orders(new_id("orders"))
        await site.deploy(http, flow)
        run = await start(site, http, flow["id"], {"base": service.url}, wait=40)
        assert run["status"] == "failed", run
        echo = {"id": new_id("echo"), "steps": [{"stepId": "a", "stepType": "core.return",
                                                  "input": {"output": {"ok": True}}}]}
        await site.deploy(http, echo)
        assert (await start(site, http, echo["id"], {}, wait=20))["status"] == "completed"
    return {"runId": run["runId"], "flowId": flow["id"]}


async def test_read_a_failed_run(site, browser, failed_run):
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(10_000)
    page = await ctx.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await sign_in(page, site)
    # the runs list: newest first, filter to failed, then by run id prefix
    head = [await th.inner_text() for th in await page.locator("table.runs th").all()]
    assert head == ["Run ID", "Flow", "Status", "Failed step", "Error code", "Started", "Duration"]
    await page.get_by_label("Status").select_option("failed")
    await page.get_by_role("button", name="Apply").click()
    await page.wait_for_url("**status=failed*")
    await shot(page, "runs-list-1280.png")
    statuses = await page.locator("table.runs tbody td:nth-child(3)").all_inner_texts()
    assert statuses and all("Failed" in s for s in statuses)
    run8 = failed_run["runId"][:8]
    await page.get_by_label("Run ID").fill(run8)
    await page.get_by_role("button", name="Apply").click()
    await page.wait_for_url(f"**runId={run8}*")
    row = page.locator("table.runs tbody tr", has=page.locator(f"a[title='{failed_run['runId']}']"))
    assert await row.locator("td[data-label='Failed step']").inner_text() == "notify-partner"
    assert await row.locator("td[data-label='Error code']").inner_text() == "HTTP_RATE_LIMITED"
    await row.get_by_role("link", name="HTTP_RATE_LIMITED").click()
    await page.wait_for_url("**errorCode=HTTP_RATE_LIMITED")
    assert failed_run["runId"] in await page.locator("table.runs").inner_html()
    await page.locator(f"table.runs a[title='{failed_run['runId']}']").click()
    await page.wait_for_url(f"**/runs/{failed_run['runId']}")
    await shot(page, "run-detail-1280.png")
    await check_detail(page, failed_run)
    first = page.locator("svg.graph .first-failed")
    assert await first.count() == 1 and "first failed" in (await page.locator("svg.graph").text_content() or "")
    await shot(page, "run-graph-failed-1280.png", "figure.picture")
    retried = page.locator("svg.timeline-chart rect.seg-retry-wait title")
    assert "attempt 1 and its backoff" in (await retried.first.text_content() or "")  # Temporal's 2 attempts
    await check_views_and_hostile_data(page, site)
    await check_keyboard(page)
    assert not [e for e in errors if "Content Security Policy" in e], errors
    await check_rerun_plan(page, failed_run)
    await ctx.close()


async def check_detail(page: Any, run: dict[str, Any]) -> None:
    crumbs = await page.get_by_role("navigation", name="Breadcrumb").inner_text()
    assert re.sub(r"\s+", " ", crumbs).strip() == f"Runs / Flow {run['flowId']} / Run {run['runId'][:8]}"
    assert "Failed" in await page.locator("h1 .badge").inner_text()
    assert await page.locator("#progress").inner_text() == "4 / 5 steps"
    assert await page.locator("#summary").inner_text() == "2 completed, 2 failed"
    assert "Absorbed: the run went on" in await page.locator("#step-3 > summary").inner_text()
    first = page.locator("details[open]#step-4")
    assert await first.count() == 1, "the first failed step is expanded on load"
    panel = first.locator(".error-panel").first
    assert await panel.locator(".error-title").inner_text() == "HTTP_RATE_LIMITED"
    assert "returned 429" in await panel.locator("pre.message").inner_text()
    assert await panel.locator(".provider").inner_text() == "Provider status: 429 (retryable)"
    await panel.get_by_text("Technical details").click()
    assert "Code: HTTP_RATE_LIMITED" in await panel.locator("details.technical pre").inner_text()
    assert await first.get_by_text("First failed step").count() == 1
    await page.get_by_role("link", name="Jump to failed step").click()
    assert page.url.endswith("#step-4")
    assert await page.evaluate("document.activeElement.closest('details').id") == "step-4"


async def check_views_and_hostile_data(page: Any, site: Any) -> None:
    await page.locator("#step-2 > summary").click()
    out = page.locator("#step-2-out-h").locator("..")
    tree = out.locator("#step-2-out-tree")
    assert await tree.is_visible() and not await out.locator("#step-2-out-json").is_visible()
    assert "<script>window.pwned = 1</script>" in await tree.inner_text()  # shown as text
    link = tree.get_by_role("link", name=f"show the whole value ({BIG} characters) as JSON")
    href = await link.get_attribute("href")
    whole = await page.request.get(site.url(href))
    assert whole.headers["content-type"].startswith("application/json") and len(await whole.json()) == BIG
    await out.get_by_role("button", name="JSON").click()
    assert await out.locator("#step-2-out-json").is_visible() and not await tree.is_visible()
    assert await out.get_by_role("button", name="JSON").get_attribute("aria-pressed") == "true"
    await out.get_by_role("button", name="Table").click()
    assert await out.locator("#step-2-out-table th").all_inner_texts() == ["note", "qty", "sku"]
    await out.get_by_role("button", name="Meta").click()
    assert "array" in await out.locator("#step-2-out-meta").inner_text()
    await page.locator("#step-3 > summary").click()
    assert "onerror" in await page.locator("#step-3 pre.message").inner_text()
    assert "No output data available" in await page.locator("#step-3").inner_text()
    assert await page.evaluate("window.pwned === undefined && document.querySelectorAll('img').length === 0")
    assert "No console output. Call console.log() from your code to capture diagnostics." in \
        await page.locator("#step-2").inner_text()
    assert await page.get_by_role("heading", name="Flow Data", exact=True).count() == 1
    scope = await page.locator("#flowdata-tree").inner_text()
    assert "initial" in scope and "fetch-customer" in scope
    assert len(await page.content()) < 400_000, "the 1 MB value is cut in the page"


async def check_keyboard(page: Any) -> None:
    """Every kind of control is reached with Tab alone."""
    await page.goto(page.url.split("#")[0])
    reached: set[str] = set()
    for _ in range(60):
        await page.keyboard.press("Tab")
        reached.add(await page.evaluate("(document.activeElement.innerText || '').trim().slice(0, 40)"))
    for label in ("Jump to failed step", "Runs", "Re-run from the failed step…", "Sign out"):
        assert label in reached, (label, reached)
    assert any(x.startswith("1") or "Fetch customer" in x for x in reached)


async def check_rerun_plan(page: Any, run: dict[str, Any]) -> None:
    await page.get_by_role("link", name="Re-run from the failed step…").click()
    await page.wait_for_url("**/rerun?fromFailed=1")
    assert await page.locator("#plan-summary").inner_text() == \
        "2 step(s) reused, 3 run (again), 2 of those with side effects"  # the code step and the partner POST
    rows = await page.locator("table.plan tbody tr").all_inner_texts()
    assert any("fetch-customer" in r and "Reused" in r for r in rows)
    assert any("notify-partner" in r and "Re-executed" in r for r in rows)
    assert any("audit" in r and "Side effect:" in r for r in rows)  # a code step runs again
    await page.get_by_role("button", name="Start this re-run").click()
    await page.wait_for_url(re.compile(r".*/runs/[0-9a-f-]{36}$"))
    assert run["runId"] not in page.url and await page.get_by_text("Re-run of").count() == 1


async def test_narrow_screen_and_axe(site, browser, failed_run):
    ctx = await browser.new_context(viewport={"width": 390, "height": 844}, bypass_csp=True)  # to inject axe
    page = await ctx.new_page()
    await sign_in(page, site)
    await shot(page, "runs-list-390.png")
    assert await axe_violations(page) == []
    await page.goto(site.url(f"/runs/{failed_run['runId']}"))
    await shot(page, "run-detail-390.png")
    assert await axe_violations(page) == []
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"the run page scrolls sideways at 390 px ({width} px)"
    await page.goto(site.url("/runs"))
    assert await page.evaluate("document.documentElement.scrollWidth") <= 400
    assert await axe_violations(page) == []
    await page.goto(site.url("/flows"))
    assert await axe_violations(page) == []
    await ctx.close()


async def test_open_run_refreshes_until_it_ends(site, browser, service):
    async with httpx.AsyncClient(timeout=30) as http:
        from tests.support.service import WAITS
        waits = {**WAITS, "id": new_id("waits")}
        await site.deploy(http, waits)
        held = await start(site, http, waits["id"], {})
        slow = retrying(new_id("retry"))
        await site.deploy(http, slow)
        retry_run = await start(site, http, slow["id"], {"base": service.url})
        ctx = await browser.new_context()
        page = await ctx.new_page()
        await sign_in(page, site, then=f"/runs/{retry_run['runId']}")
        retry_text = await until(lambda: _text_of(page, ".retry"), 20)
        assert re.match(r"Retrying in \d+s \(attempt 2 of 4\)", retry_text or ""), retry_text
        assert "Provider status: 429 (retryable)" in await page.locator("#step-1").inner_text()
        await http.post(site.url(f"/v1/runs/{retry_run['runId']}/cancel"), headers=site.headers("run"))
        await page.goto(site.url(f"/runs/{held['runId']}"))
        assert "updates as it goes" in await page.locator("#refresh-status").inner_text()
        await page.locator("#step-1 > summary").click()
        await page.locator("#step-1-in-h").locator("..").get_by_role("button", name="JSON").click()
        assert await until(lambda: page.evaluate("Number(document.body.dataset.refreshed || 0) >= 1"))
        # refreshed in place: the open step and the chosen view stay as they were
        assert await page.locator("#step-1").get_attribute("open") is not None
        assert await page.locator("#step-1-in-json").is_visible()
        r = await http.post(site.url(f"/v1/runs/{held['runId']}/signals/go"), json={}, headers=site.headers("run"))
        assert r.status_code == 202
        assert await until(lambda: _has(page, "h1 .badge", "Completed"), 15)
        assert "no longer updates" in await page.locator("#refresh-status").inner_text()
        count = await page.evaluate("document.body.dataset.refreshed")
        await page.wait_for_timeout(2500)
        assert await page.evaluate("document.body.dataset.refreshed") == count, "updates stopped"
        await ctx.close()


async def _text_of(page: Any, selector: str) -> str | None:
    loc = page.locator(selector)
    return await loc.first.inner_text() if await loc.count() else None


async def _has(page: Any, selector: str, text: str) -> bool:
    return text in (await _text_of(page, selector) or "")

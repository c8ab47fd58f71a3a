"""Helpers for the browser tests: flows that fail, misbehave and wait; signing in; axe-core in the page."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

import httpx

from tests.support.service import Api

DOCS_IMG = Path(__file__).parent.parent.parent / "docs" / "img"
AXE = Path(__file__).parent.parent / "web" / "vendor" / "axe.min.js"  # axe-core 4.14.1, MPL-2.0
HOSTILE = '<script>window.pwned = 1</script>"><img src=x onerror="window.pwned = 2">'
BIG = 1_000_000


def orders(flow_id: str) -> dict[str, Any]:
    """Five steps: a fetch, a code step with hostile, tabular and 1 MB output, an absorbed failure with a
    hostile message, then a 429 that fails the run (the first failed step), and a return never reached."""
    script = (f"return [{{'sku': 'A-1', 'qty': 2, 'note': {HOSTILE!r}}}, "
              f"{{'sku': 'B-7', 'qty': 1, 'note': 'x' * {BIG}}}]")
    return {"id": flow_id, "name": "Order intake", "settings": {"limits": {"outputBytes": 1_200_000}}, "steps": [
        {"stepId": "fetch-customer", "title": "Fetch customer", "stepType": "core.http",
         "input": {"url": "{{ initial.base }}/customers/42"}},
        {"stepId": "shape", "title": "Shape the order", "stepType": "core.code", "input": {"script": script}},
        {"stepId": "audit", "title": "Audit", "stepType": "core.code", "continueOnError": True,
         "retryPolicy": {"maxRetries": 0},
         "input": {"script": f"raise ValueError({HOSTILE!r})"}},
        {"stepId": "notify-partner", "title": "Notify the partner", "stepType": "core.http",
         "retryPolicy": {"maxRetries": 1, "delayMs": 200},
         "input": {"url": "{{ initial.base }}/ratelimit", "method": "POST"}},  # a side effect: a regular activity
        {"stepId": "done", "stepType": "core.return", "input": {"output": {"ok": True}}}]}


def retrying(flow_id: str) -> dict[str, Any]:
    """A 429 that Temporal retries after 60 s: the page shows ``Retrying in N s`` meanwhile."""
    return {"id": flow_id, "steps": [
        {"stepId": "notify", "stepType": "core.http", "retryPolicy": {"maxRetries": 3, "delayMs": 60_000},
         "input": {"url": "{{ initial.base }}/ratelimit"}}]}


async def start(api: Api, http: httpx.AsyncClient, flow_id: str, payload: Any, wait: int = 0) -> dict[str, Any]:
    """Start a run of the deployed ``flow_id``; with ``wait``, until it ends."""
    r = await http.post(api.url(f"/v1/flows/{flow_id}/runs" + (f"?wait={wait}" if wait else "")),
                        json={"input": payload}, headers=api.headers("run"))
    assert r.status_code in (200, 202), r.text
    return dict(r.json())


async def sign_in(page: Any, api: Api, role: str = "admin", project: str = "acme", then: str = "/runs") -> None:
    """Sign in through the form, as a person would."""
    await page.goto(api.url(f"/signin?next={then}"))
    await page.get_by_label("API key").fill(api.keys[project][role])
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"**{then}*")


def csrf(html: str) -> str:
    """The CSRF token of the (first) form in ``html``."""
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]


async def signin_token(http: httpx.AsyncClient) -> str:
    """The sign-in form's token (its nonce cookie is kept by ``http``)."""
    return csrf((await http.get("/signin")).text)


async def sign_in_http(http: httpx.AsyncClient, key: str, then: str = "/runs") -> httpx.Response:
    """Sign ``http`` (an httpx client on the service's base URL) in with ``key`` through the form."""
    return await http.post("/signin", data={"key": key, "next": then, "csrf": await signin_token(http)})


async def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page (WCAG 2.x A/AA rules)."""
    await page.evaluate(AXE.read_text())
    result = await page.evaluate("""async () => {
        const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa']}});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                        nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
    }""")
    return [v for v in result if v["impact"] in ("serious", "critical")]


async def until(check: Any, timeout: float = 15.0) -> Any:
    """Poll ``check()`` (async) until it returns something truthy."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        got = await check()
        if got or loop.time() > end:
            return got
        await asyncio.sleep(0.2)


async def shot(page: Any, name: str, selector: str | None = None) -> None:
    """A screenshot for docs/runs.md (of one element with ``selector``), written when FLOWTIDE_SCREENSHOTS=1."""
    if os.environ.get("FLOWTIDE_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(exist_ok=True)
        if selector:
            await page.locator(selector).first.screenshot(path=str(DOCS_IMG / name))
            return
        await page.evaluate("window.scrollTo(0, 0)")
        await page.screenshot(path=str(DOCS_IMG / name))

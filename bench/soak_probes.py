"""The soak's flows and its probes of shared state: page sessions, the rate limit, circuit breakers.

Each probe answers a number. Today sessions, rate-limit buckets and breakers are kept per process (per
machine for breakers), so the numbers show it; once they are shared through the database they show that.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import time
from typing import Any

import httpx

STEP_MS = 100  # how long the target holds each step's request
BREAKER = {"failureThreshold": 3, "windowSeconds": 300, "openSeconds": 300}
BREAKER_RUNS = 12
SESSIONS = 4  # sign-ins per key are limited to 5 a minute


def soak_flow(target: str) -> dict[str, Any]:
    """Three GETs the target counts by (run key, step), then the return: the side effects the soak audits."""
    def step(sid: str) -> dict[str, Any]:
        return {"stepId": sid, "stepType": "core.http", "timeout": 5,
                "input": {"url": f"{target}/slow?ms={STEP_MS}",
                          "headers": {"x-soak-key": "{{ initial.k }}", "x-soak-step": sid}}}
    return {"id": "soak", "input": {"type": "object", "required": ["k"], "properties": {"k": {"type": "string"}}},
            "steps": [step("a"), step("b"), step("c"),
                      {"stepId": "done", "stepType": "core.return", "input": {"output": {"k": "{{ initial.k }}"}}}]}


def breaker_flow(target: str) -> dict[str, Any]:
    """One call to a failing host with a breaker and no retries: each run is one call, or one refusal."""
    return {"id": "soak-breaker", "steps": [
        {"stepId": "call", "stepType": "core.http", "circuitBreaker": BREAKER, "retryPolicy": {"maxRetries": 0},
         "continueOnError": True, "input": {"url": f"{target}/status/503"}},
        {"stepId": "done", "stepType": "core.return", "input": {"output": {"ok": True}}}]}


def signature(secret: str, body: bytes) -> str:
    t = int(time.time())
    return f"t={t},v1={hmac.new(secret.encode(), f'{t}.'.encode() + body, hashlib.sha256).hexdigest()}"


async def sign_in(base: str, key: str) -> dict[str, str] | None:
    """A page session made on the replica at ``base``: its cookies, or None when the sign-in failed."""
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        page = await http.get("/signin")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        if page.status_code != 200 or token is None:
            return None
        answer = await http.post("/signin", data={"key": key, "csrf": token.group(1), "next": "/flows"})
        return dict(http.cookies) if answer.status_code == 303 else None


async def session_alive(base: str, cookies: dict[str, str]) -> bool:
    """The page answers (200) instead of sending the browser to the sign-in form (303)."""
    async with httpx.AsyncClient(base_url=base, timeout=10, cookies=cookies) as http:
        return (await http.get("/flows")).status_code == 200


async def rate_limit_error(base: str, key: str, rate: float, seconds: float = 4.0,
                           clients: int = 8) -> dict[str, Any]:
    """Calls granted to one key through the load balancer in ``seconds``, against what one bucket allows
    (``rate`` per second after a full burst of twice that). 0.0 is exact; +1.0 means twice the limit."""
    granted = refused = 0
    headers = {"authorization": f"Bearer {key}", "x-project-id": "soak"}
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_keepalive_connections=0)  # a new connection per call: the proxy spreads them

    async def one(http: httpx.AsyncClient) -> None:
        nonlocal granted, refused
        while time.monotonic() < deadline:
            try:
                status = (await http.get("/v1/flows")).status_code
            except httpx.HTTPError:
                continue
            granted += status == 200
            refused += status == 429
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10, limits=limits) as http:
        await asyncio.gather(*(one(http) for _ in range(clients)))
    allowed = rate * seconds + 2 * rate
    return {"granted": granted, "refused": refused, "allowed": allowed, "error": round(granted / allowed - 1, 3)}


async def breaker_calls(base: str, key: str, target_calls: Any, workers: int) -> dict[str, Any]:
    """``BREAKER_RUNS`` runs, one after the other, each calling a host that answers 503: how many calls
    reached it. One breaker for the deployment lets ``failureThreshold`` through; one per machine up to
    that many per worker."""
    headers = {"authorization": f"Bearer {key}", "x-project-id": "soak"}
    before = target_calls()
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
        for _ in range(BREAKER_RUNS):
            for _attempt in range(5):
                with_wait = await http.post("/v1/flows/soak-breaker/runs?wait=20", json={"input": {}})
                if with_wait.status_code in (200, 202):
                    break
                await asyncio.sleep(1)
    threshold = BREAKER["failureThreshold"]
    # a worker re-reads a closed breaker's row at most once a second (store.breakers), so each other worker
    # may let one more call through right after the breaker opened
    return {"runs": BREAKER_RUNS, "calls": target_calls() - before, "shared": threshold,
            "sharedAtMost": threshold + workers - 1, "perMachineAtMost": threshold * workers}

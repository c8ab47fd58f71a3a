"""The auto-local rule (``workflows.placement``): which steps without ``execution`` run as local activities."""

from __future__ import annotations

from typing import Any

import pytest

from flowtide.workflows.placement import auto_local, worst_case_s
from flowtide.workflows.retry import effective

HTTP = effective("HTTP", None)  # 2 retries, 1 s then 2 s


def test_the_default_get_fits_the_bound():
    assert worst_case_s(30.0, HTTP) == pytest.approx(93.0)
    assert auto_local("core.http", {"url": "u"}, 30.0, HTTP, heartbeats=False)


@pytest.mark.parametrize(("inp", "local"), [
    ({"method": None}, True), ({"method": " head "}, True), ({"method": "DELETE"}, True),
    ({"method": "POST"}, False), ({"method": "PATCH", "idempotencyKey": True}, False),  # Flowtide's own key
    ({"method": "POST", "idempotencyKey": "order-7"}, True), ({"method": "POST", "idempotencyKey": " "}, False),
    ({"method": "POST", "headers": {"idempotency-KEY": "k"}}, True), ({"method": "POST", "headers": {"x": "k"}}, False),
    ({"method": ["GET"]}, False),
])
def test_methods_and_keys(inp: dict[str, Any], local: bool):
    assert auto_local("core.http", {"url": "u", **inp}, 30.0, HTTP, heartbeats=False) is local


def test_long_calls_many_retries_other_kinds_and_adaptive_loops_stay_remote():
    assert not auto_local("core.http", {}, 30.5, HTTP, heartbeats=False)
    assert not auto_local("core.http", {}, 30.0, effective("HTTP", {"maxRetries": 3}), heartbeats=False)
    assert auto_local("core.http", {}, 5.0, effective("HTTP", {"maxRetries": 10, "delayMs": 100}), heartbeats=False)
    assert not auto_local("core.http", {}, 5.0, effective("HTTP", {"maxRetries": 10**9}), heartbeats=False)
    assert not auto_local("llm.chat", {}, 5.0, HTTP, heartbeats=False)
    assert not auto_local("core.http", {}, 5.0, HTTP, heartbeats=True)

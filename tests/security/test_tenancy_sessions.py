"""Page sessions: making room never signs out another key; sign-in is rate limited per address and per key
(429 with Retry-After) and its form carries a token bound to a cookie (403 without it)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowtide.service.errors import ApiError
from flowtide.service.web.headers import CSP
from flowtide.service.web.session import SIGNIN_PER_ADDRESS, SIGNIN_PER_KEY, Sessions
from tests.support.service import Api, running_api
from tests.support.web import csrf


def test_a_keys_sign_ins_evict_only_its_own_oldest_session() -> None:
    s = Sessions(max_sessions=10, per_key=3)
    theirs = [s.create("ftk_b") for _ in range(3)]
    mine = [s.create("ftk_a") for _ in range(5)]
    assert all(s.get(sid) for sid in theirs)  # b's sessions survive a's sign-ins
    assert [bool(s.get(sid)) for sid in mine] == [False, False, True, True, True]


def test_a_full_table_refuses_new_sign_ins_instead_of_evicting_other_keys() -> None:
    s = Sessions(max_sessions=4, per_key=3)
    others = [s.create(f"ftk_{i}") for i in range(4)]
    with pytest.raises(ApiError) as refused:
        s.create("ftk_new")
    assert refused.value.status == 429 and refused.value.headers["Retry-After"] and "later" in refused.value.message
    assert all(s.get(sid) for sid in others)
    s.create("ftk_0")  # a key at the table's limit may still replace its own session
    assert sum(bool(s.get(sid)) for sid in others) == 3


@pytest.fixture
async def site(client: Any, tmp_path: Path) -> AsyncIterator[Api]:
    async with running_api(client, f"sqlite:///{tmp_path / 'flowtide.db'}", f"tq-ses-{uuid.uuid4().hex[:8]}") as a:
        yield a


async def test_signin_without_the_forms_token_is_refused(site: Api) -> None:
    key = site.keys["acme"]["read"]
    async with httpx.AsyncClient(base_url=site.base, timeout=30) as http:
        r = await http.post("/signin", data={"key": key, "next": "/runs"})
        assert r.status_code == 403 and "stale or came from another site" in r.text
        form = await http.get("/signin")
        assert form.headers["content-security-policy"] == CSP and "HttpOnly" in form.headers["set-cookie"]
        r = await http.post("/signin", data={"key": key, "next": "/runs", "csrf": "x" + csrf(form.text)})
        assert r.status_code == 403 and "flowtide_session" not in r.headers.get("set-cookie", "")
    async with httpx.AsyncClient(base_url=site.base, timeout=30) as other:  # a token without its cookie
        r = await other.post("/signin", data={"key": key, "next": "/runs", "csrf": csrf(form.text)})
        assert r.status_code == 403
    async with httpx.AsyncClient(base_url=site.base, timeout=30) as http:
        r = await http.post("/signin", data={"key": key, "csrf": csrf((await http.get("/signin")).text)})
        assert r.status_code == 303 and "flowtide_session=" in r.headers["set-cookie"]


async def test_signin_is_rate_limited_per_key_and_per_address(site: Api) -> None:
    async with httpx.AsyncClient(base_url=site.base, timeout=30) as http:
        async def attempt(key: str) -> httpx.Response:  # a fresh form each time (a sign-in spends its token)
            token = csrf((await http.get("/signin")).text)
            return await http.post("/signin", data={"key": key, "next": "/runs", "csrf": token})

        guessed = "ftk_guess-" + uuid.uuid4().hex
        for _ in range(int(SIGNIN_PER_KEY[1])):
            assert (await attempt(guessed)).status_code == 401
        r = await attempt(guessed)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 and "too many sign-in" in r.text
        assert (await attempt(site.keys["acme"]["read"])).status_code == 303  # another key still signs in
        left = int(SIGNIN_PER_ADDRESS[1]) - int(SIGNIN_PER_KEY[1]) - 2
        for i in range(left):
            assert (await attempt(f"ftk_other-{i}")).status_code == 401
        r = await attempt(site.keys["other"]["read"])  # this address has used its attempts
        assert r.status_code == 429 and r.headers["Retry-After"]

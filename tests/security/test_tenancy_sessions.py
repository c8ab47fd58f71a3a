"""Page sessions: making room never signs out another key; sign-in is rate limited per address and per key
(429 with Retry-After) and its form carries a token bound to a cookie (403 without it)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from flowtide.service.errors import ApiError
from flowtide.service.web.headers import CSP
from flowtide.service.web.session import SIGNIN_PER_ADDRESS, SIGNIN_PER_KEY, Sessions
from flowtide.store.database import Store
from flowtide.store.replicas import session_hash
from tests.support.service import Api, running_api
from tests.support.web import csrf


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'flowtide.db'}")
    s.migrate()
    s.create_project("acme")
    return s


def _key(store: Store) -> str:
    return store.create_key("acme", "read")[0]


async def test_a_keys_sign_ins_evict_only_its_own_oldest_session(store: Store) -> None:
    s = Sessions(store, max_sessions=10, per_key=3)
    a, b = _key(store), _key(store)
    theirs = [await s.create(b) for _ in range(3)]
    mine = [await s.create(a) for _ in range(5)]
    assert all([await s.get(sid) for sid in theirs])  # b's sessions survive a's sign-ins
    assert [bool(await s.get(sid)) for sid in mine] == [False, False, True, True, True]


async def test_a_full_table_refuses_new_sign_ins_instead_of_evicting_other_keys(store: Store) -> None:
    s = Sessions(store, max_sessions=4, per_key=3)
    keys = [_key(store) for _ in range(4)]
    others = [await s.create(k) for k in keys]
    with pytest.raises(ApiError) as refused:
        await s.create(_key(store))
    assert refused.value.status == 429 and refused.value.headers["Retry-After"] and "later" in refused.value.message
    assert all([await s.get(sid) for sid in others])
    await s.create(keys[0])  # a key at the table's limit may still replace its own session
    assert sum([bool(await s.get(sid)) for sid in others]) == 3


async def test_the_table_keeps_hashes_of_session_ids_and_key_ids_and_forgets_revoked_keys(store: Store) -> None:
    s = Sessions(store, ttl_s=60)
    key_id, key = store.create_key("acme", "read")
    sid = await s.create(key_id)
    with store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(text("SELECT * FROM web_sessions")).mappings()]
    assert [(r["id_hash"], r["key_id"]) for r in rows] == [(session_hash(sid), key_id)]
    assert not any(sid in str(v) or key in str(v) for r in rows for v in r.values())
    store.revoke_key(key_id)
    assert await s.get(sid) is None  # a revoked key signs its sessions out
    expired = Sessions(store, ttl_s=-1)
    assert await expired.get(await expired.create(_key(store))) is None


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
        # only failures spend the address's bucket: the guesses refused by their key's bucket and the
        # successful sign-in did not
        left = int(SIGNIN_PER_ADDRESS[1]) - int(SIGNIN_PER_KEY[1])
        for i in range(left):
            assert (await attempt(f"ftk_other-{i}")).status_code == 401
        r = await attempt("ftk_one-more")  # this address has used its failures
        assert r.status_code == 429 and r.headers["Retry-After"]
        # everyone behind one proxy shares its address: a correct key still signs in
        assert (await attempt(site.keys["other"]["read"])).status_code == 303

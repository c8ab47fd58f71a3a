"""Tenancy of connections: the operator's (database-wide) connections are used by every project but changed
only with the CLI; a project never learns whether another project's or the operator's name exists."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowtide.store.connections import Connections
from tests.support.oauth_server import OAuthWorld
from tests.support.service import Api, new_id, running_api

OPERATOR = "crm-" + secrets.token_hex(3)  # added with the CLI: database-wide
THEIRS = "theirs-" + secrets.token_hex(3)  # project "other"'s own connection


@pytest.fixture(scope="module")
def worlds() -> Iterator[tuple[OAuthWorld, OAuthWorld]]:
    with OAuthWorld() as real, OAuthWorld(client_id=real.client_id, client_secret=real.client_secret) as evil:
        yield real, evil  # evil accepts the operator's client: any grant it records is a leaked secret


@pytest.fixture(scope="module")
async def api(client: Any, tmp_path_factory: pytest.TempPathFactory,
              worlds: tuple[OAuthWorld, OAuthWorld]) -> AsyncIterator[Api]:
    db = Path(tmp_path_factory.mktemp("tenancy")) / "flowtide.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FLOWTIDE_DATABASE_URL", f"sqlite:///{db}")  # the worker reads connections from here
        mp.setenv("FLOWTIDE_SECRET_KEY", "tenancy-" + secrets.token_hex(16))
        async with running_api(client, f"sqlite:///{db}", f"tq-ten-{uuid.uuid4().hex[:8]}") as a:
            real = worlds[0]
            Connections(a.svc.store).add(OPERATOR, "oauth2", {"tokenUrl": real.url + "/token", "clientId":
                                         real.client_id, "clientSecret": real.client_secret,
                                         "origins": [real.url]})  # projects may use it at its API only
            Connections(a.svc.store).add(THEIRS, "bearer", {"token": "t-" + secrets.token_hex(8)}, "other")
            yield a


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=60) as c:
        yield c


def _shape(r: httpx.Response, name: str) -> tuple[int, Any]:
    """Status and body with the name and the request id taken out: what a caller can compare."""
    body = r.json() if r.content else None
    for e in (body or {}).get("errors", []):
        e["message"] = e["message"].replace(name, "NAME")
        e.get("extensions", {}).pop("requestId", None)
    return r.status_code, body


@pytest.mark.parametrize("name", [OPERATOR, THEIRS])
async def test_foreign_and_operator_names_answer_like_absent_ones(api: Api, http: httpx.AsyncClient,
                                                                  name: str) -> None:
    absent = "nothing-" + secrets.token_hex(3)
    calls: list[tuple[str, Any]] = [("delete", None), ("put", {"value": "x"}), ("put", {"tokenUrl": "http://e/t"})]
    if name == THEIRS:
        calls.append(("get", None))
    for method, body in calls:
        kw = {"json": body} if body is not None else {}
        got = [await http.request(method.upper(), api.url(f"/v1/connections/{n}"), headers=api.headers("admin"),
                                  **kw) for n in (name, absent)]
        assert _shape(got[0], name) == _shape(got[1], absent), (method, body, got[0].text)
    kept = Connections(api.svc.store).show(name, "other")  # untouched
    assert kept is not None and kept["project"] == (None if name == OPERATOR else "other")


async def test_a_project_put_on_an_operator_connection_changes_only_its_own(
        api: Api, http: httpx.AsyncClient, worlds: tuple[OAuthWorld, OAuthWorld]) -> None:
    real, evil = worlds
    before = Connections(api.svc.store).show(OPERATOR)
    r = await http.put(api.url(f"/v1/connections/{OPERATOR}"), json={"tokenUrl": evil.url + "/token"},
                       headers=api.headers("admin"))
    assert r.status_code == 400 and "needs 'kind'" in r.text  # as for any new name: nothing to merge with
    shadow = {"kind": "oauth2", "tokenUrl": evil.url + "/token", "clientId": "acme", "clientSecret": "acme-s"}
    r = await http.put(api.url(f"/v1/connections/{OPERATOR}"), json=shadow, headers=api.headers("admin"))
    assert r.status_code == 201 and r.json()["project"] == "acme", r.text  # acme's own, shadowing for acme
    after = Connections(api.svc.store).show(OPERATOR)
    assert before is not None and after == before and after["config"]["tokenUrl"] == real.url + "/token"
    doc = {"id": new_id("ten"), "steps": [{"stepId": "call", "stepType": "core.http", "connection": OPERATOR,
                                           "retryPolicy": {"maxRetries": 0}, "input": {"url": real.url + "/api"}}]}
    await api.deploy(http, doc, project="other")
    r = await http.post(api.url(f"/v1/flows/{doc['id']}/runs?wait=30"), json={"input": {}},
                        headers=api.headers("run", "other"))
    assert r.status_code == 200 and r.json()["status"] == "completed", r.text
    assert real.grants and not evil.grants  # the operator's client secret went to the operator's tokenUrl only
    assert (await http.delete(api.url(f"/v1/connections/{OPERATOR}"), headers=api.headers("admin"))).status_code == 204
    kept = Connections(api.svc.store).show(OPERATOR)  # acme removed its own row, not the operator's
    assert kept is not None and kept["config"] == before["config"]


def test_migration_0003_keeps_the_rows_of_a_0002_database(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from alembic import command
    from alembic.config import Config

    import flowtide.store.database as store_module
    from flowtide.store.database import Store
    monkeypatch.setenv("FLOWTIDE_SECRET_KEY", "tenancy-" + secrets.token_hex(16))
    store = Store(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(store_module.__file__).parent / "migrations"))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        from sqlalchemy import text

        from flowtide.store.secretbox import seal
        for name, project in (("ops", None), ("mine", "acme")):
            conn.execute(text("INSERT INTO connections VALUES (:n, :p, 'bearer', '{}', :s, 'ok', NULL, NULL, "
                              "'2026-01-01', '2026-01-01', '2026-01-01')"),
                         {"n": name, "p": project, "s": seal(name, {"token": "t-" + name})})
    store.migrate()
    assert Connections(store).get("ops").secret == {"token": "t-ops"}  # type: ignore[union-attr]
    assert Connections(store, "acme").get("mine").project == "acme"  # type: ignore[union-attr]
    assert [(c["name"], c["project"]) for c in Connections(store).list()] == [("mine", "acme"), ("ops", None)]


BAD_FIELDS = [
    ({"kind": "api-key", "header": "X-Key\r\nX-Evil: 1", "value": "v"}, "header"),
    ({"kind": "api-key", "header": "X Key", "value": "v"}, "header"),
    ({"kind": "api-key", "header": "X-Key:", "value": "v"}, "header"),
    ({"kind": "api-key", "header": "Host", "value": "evil.example"}, "header"),
    ({"kind": "api-key", "header": "Transfer-Encoding", "value": "chunked"}, "header"),
    ({"kind": "api-key", "header": "content-length", "value": "0"}, "header"),
    ({"kind": "api-key", "header": "X-" + "k" * 200, "value": "v"}, "header"),
    ({"kind": "api-key", "header": "X-Key", "value": "v\r\nX-Evil: 1"}, "value"),
    ({"kind": "bearer", "token": "t" * 20_000}, "token"),
    ({"kind": "oauth2", "tokenUrl": "http://169.254.169.254/latest/meta-data", "clientId": "c",
      "clientSecret": "s"}, "tokenUrl"),
    ({"kind": "oauth2", "tokenUrl": "http://10.0.0.5/token", "clientId": "c", "clientSecret": "s"}, "tokenUrl"),
    ({"kind": "oauth2", "tokenUrl": "http://[::ffff:10.0.0.5]/token", "clientId": "c", "clientSecret": "s"},
     "tokenUrl"),
    ({"kind": "oauth2", "tokenUrl": "file:///etc/passwd", "clientId": "c", "clientSecret": "s"}, "tokenUrl"),
    ({"kind": "oauth2", "tokenUrl": "http://127.0.0.1/t", "clientId": "c", "clientSecret": "s",
      "scopes": ["s"] * 65}, "scopes"),
]


@pytest.mark.parametrize(("body", "field"), BAD_FIELDS)
async def test_save_refuses_unsafe_fields_naming_them(api: Api, http: httpx.AsyncClient, body: dict[str, Any],
                                                     field: str) -> None:
    name = new_id("bad")
    r = await http.put(api.url(f"/v1/connections/{name}"), json=body, headers=api.headers("admin"))
    assert r.status_code == 400, r.text
    err = r.json()["errors"][0]
    assert err["extensions"]["code"] == "INPUT_INVALID" and err["message"].startswith(f"{field}: "), err
    assert err["extensions"]["problems"][0]["path"] == f"$.{field}"
    with pytest.raises(ValueError, match=f"^{field}: "):  # the CLI saves through the same check
        Connections(api.svc.store).add(name, body["kind"], {k: v for k, v in body.items() if k != "kind"})
    assert Connections(api.svc.store).show(name) is None
    assert (await http.get(api.url(f"/v1/connections/{name}"), headers=api.headers("admin"))).status_code == 404

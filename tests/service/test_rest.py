"""The REST API over real HTTP against a real Temporal server: flows, runs, idempotency, limits, error shape."""

from __future__ import annotations

import asyncio
from typing import Any

from flowtide.service.ops import body_hash
from tests.support.service import ECHO, WAITS, new_id


def assert_error(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"errors"} and len(body["errors"]) == 1
    err = body["errors"][0]
    assert err["extensions"]["code"] == code and err["message"] and err["extensions"]["requestId"]
    assert "Traceback" not in r.text
    return dict(err)


async def test_deploy_list_read_and_revert_revisions(api, http):
    doc = {**ECHO, "id": new_id("flow")}
    first = await api.deploy(http, doc)
    assert first["revision"] == 1 and first["flowId"] == doc["id"] and first["deployedAt"]
    yaml_doc = (f"id: {doc['id']}\nname: Echo 2\nsteps:\n  - stepId: a\n    stepType: core.return\n"
                "    input: {output: no}\n")
    r = await http.put(api.url(f"/v1/flows/{doc['id']}"), content=yaml_doc,
                       headers={**api.headers(), "content-type": "application/yaml"})
    assert r.status_code == 201 and r.json()["revision"] == 2
    two = (await http.get(api.url(f"/v1/flows/{doc['id']}?revision=2"), headers=api.headers("read"))).json()
    assert two["document"]["steps"][0]["input"]["output"] == "no"  # YAML as the flow parser reads it, not False
    r = await http.put(api.url(f"/v1/flows/{doc['id']}"), content=yaml_doc + "name: Twice\n",
                       headers={**api.headers(), "content-type": "application/yaml"})
    assert_error(r, 400, "BAD_REQUEST")  # a duplicate key is refused, as `flowtide validate` refuses it
    flows = (await http.get(api.url("/v1/flows"), headers=api.headers("read"))).json()["flows"]
    assert {"flowId": doc["id"], "revision": 2, "title": "Echo 2"}.items() <= next(
        f for f in flows if f["flowId"] == doc["id"]).items()
    one = (await http.get(api.url(f"/v1/flows/{doc['id']}?revision=1"), headers=api.headers("read"))).json()
    assert one["revision"] == 1 and one["document"]["name"] == "Echo"
    r = await http.post(api.url(f"/v1/flows/{doc['id']}/revert"), json={"revision": 1}, headers=api.headers())
    assert r.status_code == 201 and r.json()["revision"] == 3
    revs = (await http.get(api.url(f"/v1/flows/{doc['id']}/revisions"), headers=api.headers("read"))).json()
    assert [x["revision"] for x in revs["revisions"]] == [3, 2, 1]
    assert revs["revisions"][0]["keyName"] == "acme-admin"
    assert_error(await http.get(api.url(f"/v1/flows/{doc['id']}?revision=9"), headers=api.headers()), 404, "NOT_FOUND")


async def test_invalid_documents_list_every_problem(api, http):
    fid = new_id("bad")
    r = await http.put(api.url(f"/v1/flows/{fid}"), json={"steps": [{"stepId": "a"}, {"stepType": "nope"}]},
                       headers=api.headers())
    err = assert_error(r, 400, "INPUT_INVALID")
    assert len(err["extensions"]["problems"]) >= 2 and all({"path", "message"} <= set(p)
                                                          for p in err["extensions"]["problems"])
    r = await http.put(api.url(f"/v1/flows/{fid}"), json={**ECHO, "id": "other-id"}, headers=api.headers())
    assert assert_error(r, 400, "INPUT_INVALID")["extensions"]["problems"][0]["path"] == "id"
    r = await http.put(api.url(f"/v1/flows/{fid}"), content=b"{not json", headers={
        **api.headers(), "content-type": "application/json"})
    assert_error(r, 400, "BAD_REQUEST")
    r = await http.put(api.url(f"/v1/flows/{fid}"), content=b"x", headers={**api.headers(), "content-type": "text/csv"})
    assert_error(r, 415, "UNSUPPORTED_MEDIA_TYPE")


async def test_start_wait_read_list_and_input_validation(api, http):
    doc = {**ECHO, "id": new_id("echo")}
    await api.deploy(http, doc)
    url = api.url(f"/v1/flows/{doc['id']}/runs")
    err = assert_error(await http.post(url, json={"input": {"n": "seven"}}, headers=api.headers("run")),
                       400, "INPUT_INVALID")
    assert err["extensions"]["problems"][0]["path"] == "$.n"
    r = await http.post(url + "?wait=20", json={"input": {"n": 7}}, headers=api.headers("run"))
    assert r.status_code == 200 and r.json()["status"] == "completed" and r.json()["output"] == {"got": 7}
    r = await http.post(url, json={"input": {"n": 8}}, headers=api.headers("run"))
    assert r.status_code == 202
    started = r.json()
    assert set(started) == {"runId", "workflowId", "status", "revision"} and started["revision"] == 1
    for ref in (started["runId"], started["workflowId"]):
        rec = await _until_done(api, http, ref)
        assert rec["output"] == {"got": 8}
    listed = (await http.get(api.url(f"/v1/runs?flowId={doc['id']}&limit=1"), headers=api.headers("read"))).json()
    assert len(listed["runs"]) == 1 and listed["nextCursor"]
    assert set(listed["runs"][0]) == {"runId", "workflowId", "flowId", "revision", "status", "startedAt",
                                      "completedAt", "durationMs", "failedStepId", "errorCode"}
    more = await http.get(api.url(f"/v1/runs?flowId={doc['id']}&limit=5&cursor={listed['nextCursor']}"),
                          headers=api.headers("read"))
    assert len(more.json()["runs"]) == 1 and more.json()["runs"][0]["revision"] == 1
    assert_error(await http.get(api.url("/v1/runs?status=nope"), headers=api.headers()), 400, "BAD_REQUEST")
    assert_error(await http.get(api.url("/v1/runs?limit=0"), headers=api.headers()), 400, "BAD_REQUEST")
    assert_error(await http.post(url + "?wait=61", json={"input": {"n": 1}}, headers=api.headers()), 400, "BAD_REQUEST")


async def _until_done(api: Any, http: Any, ref: str) -> dict[str, Any]:
    for _ in range(100):
        r = await http.get(api.url(f"/v1/runs/{ref}"), headers=api.headers("read"))
        assert r.status_code == 200, r.text
        rec = r.json()
        if rec.get("status") not in ("running", "waiting"):
            return dict(rec)
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {ref} did not end")


async def test_ten_concurrent_identical_requests_start_one_run(api, http):
    doc = {**ECHO, "id": new_id("idem")}
    await api.deploy(http, doc)
    url, key = api.url(f"/v1/flows/{doc['id']}/runs"), new_id("key")
    headers = {**api.headers("run"), "idempotency-key": key}
    answers = await asyncio.gather(*(http.post(url, json={"input": {"n": 1}}, headers=headers) for _ in range(10)))
    assert {r.status_code for r in answers} == {202}, [r.text for r in answers]
    assert len({(r.json()["runId"], r.json()["workflowId"]) for r in answers}) == 1
    await _until_done(api, http, answers[0].json()["runId"])
    again = await http.post(url, json={"input": {"n": 1}}, headers=headers)
    assert again.status_code == 202 and again.json()["runId"] == answers[0].json()["runId"]
    assert again.json()["status"] == "completed"
    listed = (await http.get(api.url(f"/v1/runs?flowId={doc['id']}"), headers=api.headers("read"))).json()["runs"]
    assert len(listed) == 1
    assert_error(await http.post(url, json={"input": {"n": 2}}, headers=headers), 409, "CONFLICT")


async def test_an_idempotent_start_never_answers_with_another_projects_run(api, http):
    doc = {**WAITS, "id": new_id("shared-name")}  # two projects may deploy the same flow id
    await api.deploy(http, doc, "other")
    await api.deploy(http, doc)
    url = api.url(f"/v1/flows/{doc['id']}/runs")
    theirs = (await http.post(url, json={}, headers=api.headers("run", "other"))).json()
    # the worst case of a workflow id collision: acme's key was given the id of other's running run
    key = new_id("key")
    await asyncio.to_thread(api.svc.store.claim_idempotency, "acme", key, body_hash(doc["id"], None),
                            theirs["workflowId"])
    r = await http.post(url, json={}, headers={**api.headers("run"), "idempotency-key": key})
    assert_error(r, 409, "CONFLICT")
    assert theirs["runId"] not in r.text and "new Idempotency-Key" in r.text


async def test_signal_cancel_and_rerun(api, http):
    doc = {**WAITS, "id": new_id("waits")}
    await api.deploy(http, doc)
    url = api.url(f"/v1/flows/{doc['id']}/runs")
    first = (await http.post(url, json={}, headers=api.headers("run"))).json()
    r = await http.post(api.url(f"/v1/runs/{first['runId']}/signals/go"), json={"x": 1}, headers=api.headers("run"))
    assert r.status_code == 202 and r.json()["runId"] == first["runId"]
    assert (await _until_done(api, http, first["runId"]))["status"] == "completed"
    assert_error(await http.post(api.url(f"/v1/runs/{first['runId']}/cancel"), headers=api.headers("run")),
                 409, "CONFLICT")
    second = (await http.post(url, json={}, headers=api.headers("run"))).json()
    assert (await http.post(api.url(f"/v1/runs/{second['workflowId']}/cancel"),
                            headers=api.headers("run"))).status_code == 202
    assert (await _until_done(api, http, second["runId"]))["status"] == "cancelled"
    r = await http.post(api.url(f"/v1/runs/{second['runId']}/rerun"), json={"fromFailed": True},
                        headers=api.headers("run"))
    assert r.status_code == 202, r.text
    assert r.json()["runId"] != second["runId"] and r.json()["revision"] == 1
    assert_error(await http.post(api.url("/v1/runs/no-such-run/rerun"), json={}, headers=api.headers("run")),
                 404, "NOT_FOUND")


async def test_limits_and_unknown_paths_answer_in_the_error_shape(api, http, monkeypatch):
    doc = {**ECHO, "id": new_id("lim")}
    await api.deploy(http, doc)
    monkeypatch.setattr(api.svc, "max_body", 1000)
    r = await http.post(api.url(f"/v1/flows/{doc['id']}/runs"), json={"input": {"n": 1, "pad": "x" * 2000}},
                        headers=api.headers("run"))
    assert_error(r, 413, "PAYLOAD_TOO_LARGE")
    r = await http.post(api.url(f"/v1/flows/{doc['id']}/runs"), content=b"a=1",
                        headers={**api.headers("run"), "content-type": "application/x-www-form-urlencoded"})
    assert_error(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert_error(await http.get(api.url("/v1/nothing"), headers=api.headers()), 404, "NOT_FOUND")
    assert_error(await http.delete(api.url("/v1/flows"), headers=api.headers()), 405, "BAD_REQUEST")


async def test_rate_limit_answers_429_with_retry_after(api, http, monkeypatch):
    from flowtide.service.auth import RateLimiter
    monkeypatch.setattr(api.svc, "limiter", RateLimiter(api.svc.store, rate=1, burst=3, name=new_id("t")))
    codes = [(await http.get(api.url("/v1/flows"), headers=api.headers("read"))).status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
    r = await http.get(api.url("/v1/flows"), headers=api.headers("read"))
    assert_error(r, 429, "RATE_LIMITED")
    assert int(r.headers["retry-after"]) >= 1
    # another key has its own bucket
    assert (await http.get(api.url("/v1/flows"), headers=api.headers("admin"))).status_code == 200


async def test_healthz_and_openapi(api, http):
    r = await http.get(api.url("/healthz"))
    assert r.json() == {"ok": True, "temporal": True, "database": True}
    doc = (await http.get(api.url("/openapi.json"))).json()
    assert doc["openapi"].startswith("3.")
    from flowtide.service.app import ROUTES
    for route in ROUTES:
        assert set(route.methods or ()) - {"HEAD"} <= {m.upper() for m in doc["paths"][route.path]}, route.path


async def _answering(url: str) -> Any:
    import httpx
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            try:
                return await http.get(url)
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never answered")


def _cli(*args: str, env: dict[str, str]) -> Any:
    import subprocess
    import sys
    return subprocess.Popen([sys.executable, "-m", "flowtide.client.cli.main", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


async def test_flowtide_serve_command_migrates_and_answers(dev_server, tmp_path):
    import os

    from flowtide.dev.server import free_port
    port = free_port()
    env = {**os.environ, "TEMPORAL_ADDRESS": dev_server.address,
           "FLOWTIDE_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}"}
    proc = _cli("serve", "--port", str(port), env=env)
    try:
        r = await _answering(f"http://127.0.0.1:{port}/healthz")
        assert r.json() == {"ok": True, "temporal": True, "database": True}
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err


async def test_flowtide_dev_serves_the_api_next_to_its_server_and_worker(tmp_path):
    import os

    import httpx

    from flowtide.dev.server import free_port
    from flowtide.store.database import Store
    url = f"sqlite:///{tmp_path / 'dev.db'}"
    store = Store(url)
    await asyncio.to_thread(store.migrate)
    await asyncio.to_thread(store.create_project, "acme")
    key = (await asyncio.to_thread(store.create_key, "acme", "admin"))[1]
    env = {k: v for k, v in os.environ.items() if k != "TEMPORAL_ADDRESS"} | {"FLOWTIDE_DATABASE_URL": url}
    api = free_port()
    proc = _cli("dev", "--port", str(free_port()), "--ui-port", str(free_port()), "--db-file",
                str(tmp_path / "t.db"), "--api-port", str(api), "--demo-port", "0", env=env)
    try:
        assert (await _answering(f"http://127.0.0.1:{api}/healthz")).status_code == 200
        headers = {"authorization": f"Bearer {key}", "x-project-id": "acme"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api}", headers=headers, timeout=30) as http:
            assert (await http.put("/v1/flows/echo", json=ECHO)).status_code == 201
            r = await http.post("/v1/flows/echo/runs?wait=20", json={"input": {"n": 2}})
            assert r.status_code == 200 and r.json()["output"] == {"got": 2}
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err

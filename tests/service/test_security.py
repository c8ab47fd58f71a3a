"""Keys, roles and projects over real HTTP: who may do what, and that nothing leaks across projects."""

from __future__ import annotations

import asyncio
import json

from tests.service.test_rest import assert_error
from tests.support.service import ECHO, WAITS, new_id


async def _runs_of(client, flow_id: str) -> list[str]:
    return [wf.id async for wf in client.list_workflows(f'FlowId = "{flow_id}"')]


async def test_who_may_start_a_run(api, http, client):
    doc = {**ECHO, "id": new_id("sec")}
    await api.deploy(http, doc)
    url, body = api.url(f"/v1/flows/{doc['id']}/runs"), {"input": {"n": 1}}
    key_id, revoked = await asyncio.to_thread(api.svc.store.create_key, "acme", "run", "gone")
    await asyncio.to_thread(api.svc.store.revoke_key, key_id)
    cases = [
        ({"x-project-id": "acme"}, 401, "UNAUTHENTICATED"),
        ({"authorization": f"Bearer {revoked}", "x-project-id": "acme"}, 401, "UNAUTHENTICATED"),
        ({"authorization": "Bearer ftk_not-a-key", "x-project-id": "acme"}, 401, "UNAUTHENTICATED"),
        ({"authorization": f"Basic {api.keys['acme']['run']}", "x-project-id": "acme"}, 401, "UNAUTHENTICATED"),
        (api.headers("run", "other", as_project="acme"), 403, "FORBIDDEN"),
        (api.headers("read"), 403, "FORBIDDEN"),
        ({"authorization": f"Bearer {api.keys['acme']['run']}"}, 400, "BAD_REQUEST"),
    ]
    for headers, status, code in cases:
        assert_error(await http.post(url, json=body, headers=headers), status, code)
    assert await _runs_of(client, doc["id"]) == []
    # read keys read, run keys do not deploy
    assert (await http.get(api.url("/v1/flows"), headers=api.headers("read"))).status_code == 200
    assert_error(await http.put(api.url(f"/v1/flows/{doc['id']}"), json=doc, headers=api.headers("run")),
                 403, "FORBIDDEN")
    assert_error(await http.post(api.url(f"/v1/flows/{doc['id']}/revert"), json={"revision": 1},
                                 headers=api.headers("run")), 403, "FORBIDDEN")


async def test_another_projects_flows_and_runs_are_unreachable(api, http):
    doc = {**WAITS, "id": new_id("mine")}
    await api.deploy(http, doc)
    run = (await http.post(api.url(f"/v1/flows/{doc['id']}/runs"), json={}, headers=api.headers("run"))).json()
    theirs = api.headers("admin", "other")
    for ref in (run["runId"], run["workflowId"]):
        assert_error(await http.get(api.url(f"/v1/runs/{ref}"), headers=theirs), 404, "NOT_FOUND")
        for path, body in ((f"/v1/runs/{ref}/signals/go", {}), (f"/v1/runs/{ref}/cancel", None),
                           (f"/v1/runs/{ref}/rerun", {})):
            assert_error(await http.post(api.url(path), json=body, headers=theirs), 404, "NOT_FOUND")
    for path in (f"/v1/flows/{doc['id']}", f"/v1/flows/{doc['id']}/revisions"):
        assert_error(await http.get(api.url(path), headers=theirs), 404, "NOT_FOUND")
    for path in (f"/v1/flows/{doc['id']}/runs", f"/v1/flows/{doc['id']}/revert"):
        assert_error(await http.post(api.url(path), json={"revision": 1}, headers=theirs), 404, "NOT_FOUND")
    listed = (await http.get(api.url(f"/v1/runs?flowId={doc['id']}"), headers=theirs)).json()
    assert listed["runs"] == []
    assert all(f["flowId"] != doc["id"] for f in
               (await http.get(api.url("/v1/flows"), headers=theirs)).json()["flows"])
    # the hook of acme's flow with other's key, and other's (empty) hook path for acme's flow
    assert_error(await http.post(api.url(f"/v1/hooks/acme/{doc['id']}"), json={}, headers=theirs), 403, "FORBIDDEN")
    assert_error(await http.post(api.url(f"/v1/hooks/other/{doc['id']}"), json={}, headers=theirs), 404, "NOT_FOUND")
    # still running, still ours
    r = await http.post(api.url(f"/v1/runs/{run['runId']}/cancel"), headers=api.headers("run"))
    assert r.status_code == 202


async def test_keys_never_leak_into_answers_records_histories_or_logs(api, http, client, capsys, caplog):
    doc = {**ECHO, "id": new_id("canary")}
    await api.deploy(http, doc)
    key = api.keys["acme"]["run"]
    r = await http.post(api.url(f"/v1/flows/{doc['id']}/runs?wait=20"), json={"input": {"n": 3}},
                        headers=api.headers("run"))
    assert r.status_code == 200
    run_id = r.json()["runId"]
    bad = [await http.post(api.url(f"/v1/flows/{doc['id']}/runs"), json={"input": {"n": "x"}},
                           headers=api.headers("run")),
           await http.put(api.url(f"/v1/flows/{doc['id']}"), json=doc, headers=api.headers("run")),
           await http.get(api.url("/v1/runs/nope"), headers=api.headers("run", "other", as_project="acme"))]
    texts = [r.text, *(b.text for b in bad), (await http.get(api.url(f"/v1/runs/{run_id}"),
                                                             headers=api.headers("read"))).text]
    history = await client.get_workflow_handle(r.json()["workflowId"]).fetch_history()
    texts.append("".join(str(e) for e in history.events))  # proto text: payload bytes appear as written
    out = capsys.readouterr()
    texts += [out.out, out.err, caplog.text]
    for text in texts:
        assert key not in text and key[4:20] not in text
    stored = await asyncio.to_thread(api.svc.store.list_keys, "acme")
    assert all(key not in json.dumps(k) for k in stored)

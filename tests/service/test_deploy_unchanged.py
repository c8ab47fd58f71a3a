"""Deploying a document identical to the deployed revision stores nothing and answers that revision (REST,
GraphQL, the CLI); a changed document, or a revert to an older one, is a new revision."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.service.test_graphql import gql
from tests.support.cli import flowtide
from tests.support.service import ECHO, new_id


async def test_rest_and_graphql_answer_the_current_revision_for_an_identical_document(api, http):
    doc = {**ECHO, "id": new_id("same")}
    first = await api.deploy(http, doc)
    assert first["revision"] == 1 and first["unchanged"] is False
    # the same document again, as YAML with its keys in another order: nothing stored, 200 with revision 1
    yaml_doc = ("steps:\n  - input: {output: {got: '{{ initial.n }}'}}\n    stepType: core.return\n"
                "    stepId: answer\nname: Echo\nid: " + doc["id"] + "\ninput: {type: object, required: [n], "
                "properties: {n: {type: integer}}}\n")
    r = await http.put(api.url(f"/v1/flows/{doc['id']}"), content=yaml_doc,
                       headers={**api.headers(), "content-type": "application/yaml"})
    assert r.status_code == 200, r.text
    assert r.json() == {**first, "unchanged": True}
    q = "mutation($f: String!, $d: JSON!) { deployFlow(flowId: $f, document: $d) { revision unchanged deployedAt } }"
    same = (await gql(api, http, q, {"f": doc["id"], "d": doc}, api.headers())).json()["data"]["deployFlow"]
    assert same == {"revision": 1, "unchanged": True, "deployedAt": first["deployedAt"]}
    changed = {**doc, "name": "Echo 2"}
    two = (await gql(api, http, q, {"f": doc["id"], "d": changed}, api.headers())).json()["data"]["deployFlow"]
    assert two["revision"] == 2 and two["unchanged"] is False
    # reverting to the deployed revision's own document is unchanged; to an older one, a new revision
    r = await http.post(api.url(f"/v1/flows/{doc['id']}/revert"), json={"revision": 2}, headers=api.headers())
    assert r.status_code == 200 and r.json()["revision"] == 2 and r.json()["unchanged"] is True
    r = await http.post(api.url(f"/v1/flows/{doc['id']}/revert"), json={"revision": 1}, headers=api.headers())
    assert r.status_code == 201 and r.json()["revision"] == 3
    revs = (await http.get(api.url(f"/v1/flows/{doc['id']}/revisions"), headers=api.headers("read"))).json()
    assert [x["revision"] for x in revs["revisions"]] == [3, 2, 1]
    # GraphQL deploys need role admin and a valid flow id, as REST does
    denied = (await gql(api, http, q, {"f": doc["id"], "d": doc}, api.headers("run"))).json()
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    bad = (await gql(api, http, q, {"f": "no/slash", "d": doc}, api.headers())).json()
    assert bad["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_cli_deploy_of_an_unchanged_file_stores_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWTIDE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    code, _, err = await flowtide(capsys, "projects", "create", "acme")
    assert code == 0, err
    f = tmp_path / "hello.yaml"
    f.write_text("id: hello\nsteps:\n  - stepId: a\n    stepType: core.return\n    input: {output: 1}\n")
    code, out, _ = await flowtide(capsys, "flows", "deploy", str(f), "--project", "acme")
    assert code == 0 and out.strip() == "flow hello revision 1 deployed"
    f.write_text("# a comment and other spacing change nothing\nid: hello\nsteps:\n- {stepType: core.return, "
                 "stepId: a, input: {output: 1}}\n")
    code, out, _ = await flowtide(capsys, "flows", "deploy", str(f), "--project", "acme")
    assert code == 0 and out.strip() == \
        "flow hello revision 1 unchanged (identical to the deployed revision; nothing stored)"
    f.write_text("id: hello\nsteps:\n  - stepId: a\n    stepType: core.return\n    input: {output: 2}\n")
    code, out, _ = await flowtide(capsys, "flows", "deploy", str(f), "--project", "acme")
    assert code == 0 and out.strip() == "flow hello revision 2 deployed"

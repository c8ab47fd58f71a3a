"""GraphQL over real HTTP: queries and mutations of docs/error-handling.md, seed-002 errors, project isolation."""

from __future__ import annotations

from tests.service.test_rest import assert_error
from tests.support.service import ECHO, WAITS, new_id

RUN = """query($id: String!) { run(id: $id) { runId status flowId progress { done total }
  steps { stepId status error { code message providerStatus retryable detail } } errors { code } output } }"""


async def gql(api, http, query, variables=None, headers=None):
    return await http.post(api.url("/graphql"), json={"query": query, "variables": variables or {}},
                           headers=headers if headers is not None else api.headers("run"))


async def test_queries_and_mutations(api, http):
    fid = new_id("gq")
    await api.deploy(http, {**ECHO, "id": fid})
    r = await gql(api, http, "mutation($f: String!) { startRun(flowId: $f, input: {n: 4}, wait: 20) "
                             "{ runId workflowId status revision run { status output } } }", {"f": fid})
    started = r.json()["data"]["startRun"]
    assert started["run"] == {"status": "completed", "output": {"got": 4}} and started["revision"] == 1
    run = (await gql(api, http, RUN, {"id": started["runId"]})).json()["data"]["run"]
    assert run["progress"] == {"done": 1, "total": 1} and run["steps"][0]["stepId"] == "answer"
    data = (await gql(api, http, "query($f: String!) { flows { flowId revision } flow(id: $f) { title document } "
                                 "runs(flowId: $f, first: 5) { runs { runId status revision failedStepId errorCode } "
                                 "nextCursor } }",
                      {"f": fid})).json()["data"]
    assert any(f["flowId"] == fid for f in data["flows"]) and data["flow"]["title"] == "Echo"
    assert [x["runId"] for x in data["runs"]["runs"]] == [started["runId"]]
    assert data["runs"]["runs"][0]["failedStepId"] is None and data["runs"]["runs"][0]["errorCode"] is None
    r = await gql(api, http, "mutation($r: String!) { rerun(runId: $r) { runId } }", {"r": started["runId"]})
    assert r.json()["data"]["rerun"]["runId"] != started["runId"]
    wid = new_id("gw")
    await api.deploy(http, {**WAITS, "id": wid})
    w = (await gql(api, http, "mutation($f: String!) { startRun(flowId: $f) { runId } }", {"f": wid})).json()
    r = await gql(api, http, "mutation($r: String!) { cancelRun(runId: $r) { runId status } }",
                  {"r": w["data"]["startRun"]["runId"]})
    assert r.json()["data"]["cancelRun"]["status"] == "cancel_requested"


async def test_partial_failures_errors_and_isolation(api, http):
    fid = new_id("gq")
    await api.deploy(http, {**ECHO, "id": fid})
    r = await gql(api, http, "{ flows { flowId } flow(id: \"nope\") { title } }")
    body = r.json()
    assert r.status_code == 200 and any(f["flowId"] == fid for f in body["data"]["flows"])
    assert body["data"]["flow"] is None and body["errors"][0]["path"] == ["flow"]
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    r = await gql(api, http, "mutation($f: String!) { startRun(flowId: $f, input: {n: \"x\"}) { runId } }",
                  {"f": fid})
    err = r.json()["errors"][0]
    assert err["extensions"]["code"] == "INPUT_INVALID" and err["extensions"]["problems"]
    r = await gql(api, http, "mutation($f: String!) { startRun(flowId: $f, input: {n: 1}) { runId } }",
                  {"f": fid}, api.headers("read"))
    assert r.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert_error(await gql(api, http, "{ flows { nope } }"), 400, "BAD_REQUEST")
    assert_error(await gql(api, http, "{ flows { flowId } }", headers={}), 401, "UNAUTHENTICATED")
    no_project = {"authorization": api.headers()["authorization"]}
    assert_error(await gql(api, http, "{ flows { flowId } }", headers=no_project), 400, "BAD_REQUEST")
    assert_error(await gql(api, http, "{ flows { flowId } }", headers=api.headers("read", "other", "acme")),
                 403, "FORBIDDEN")
    run = (await gql(api, http, "mutation($f: String!) { startRun(flowId: $f, input: {n: 1}) { runId } }",
                     {"f": fid})).json()["data"]["startRun"]["runId"]
    theirs = api.headers("admin", "other")
    for query in (RUN, "mutation($id: String!) { cancelRun(runId: $id) { runId } }",
                  "mutation($id: String!) { rerun(runId: $id) { runId } }"):
        r = await gql(api, http, query, {"id": run}, theirs)
        assert r.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND", r.text
    r = await gql(api, http, "query($f: String!) { flow(id: $f) { title } runs(flowId: $f) { runs { runId } } }",
                  {"f": fid}, theirs)
    assert r.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    r = await gql(api, http, "mutation($f: String!) { startRun(flowId: $f, input: {n: 1}) { runId } }", {"f": fid},
                  theirs)
    assert r.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"

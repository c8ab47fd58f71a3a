"""The worker's secrets are the operator's: a project's run uses only those shared with projects.

Before, ``{{ secrets.NAME }}`` and a code step's ``env: [NAME]`` resolved every ``FLOWTIDE_SECRET_NAME`` of the
worker for any run, so one project's admin could deploy a flow that wrote (or sent) a secret the operator had
set for another project's flows. Now a run of a project resolves a worker secret only when the operator names
it in ``FLOWTIDE_SHARED_SECRETS``; a run outside any project (the CLI, the Python API) resolves every one.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowtide.activities._secrets import SHARED_ENV, resolve_secrets
from tests.support.rest_api import api_fixture, http_fixture
from tests.support.service import Api, new_id

api = api_fixture("secrets")
http = http_fixture()


def ref(name: str) -> str:
    return "{{ secrets." + name + " }}"


def step(sid: str, kind: str, **inp: Any) -> dict[str, Any]:
    return {"stepId": sid, "stepType": kind, "continueOnError": True, "retryPolicy": {"maxRetries": 0},
            "input": inp}


async def run(api: Api, http: httpx.AsyncClient, project: str, *steps: dict[str, Any]) -> list[dict[str, Any]]:
    doc = {"id": new_id("sec"), "steps": [*steps, {"stepId": "done", "stepType": "core.return",
                                                   "input": {"output": "{{ $errors }}"}}]}
    await api.deploy(http, doc, project)
    r = await http.post(api.url(f"/v1/flows/{doc['id']}/runs?wait=60"), json={"input": {}},
                        headers=api.headers("run", project))
    assert r.status_code == 200, r.text[:300]
    return list(r.json()["output"] or [])


async def test_a_projects_run_uses_only_the_worker_secrets_shared_with_projects(
        api: Api, http: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name, absent = "ORDERS_" + uuid.uuid4().hex[:8].upper(), "NOTHING_" + uuid.uuid4().hex[:8].upper()
    canary = "canary-" + uuid.uuid4().hex
    monkeypatch.setenv("FLOWTIDE_SECRET_" + name, canary)
    monkeypatch.setenv("FLOWTIDE_FILE_ROOTS", str(tmp_path))
    monkeypatch.delenv(SHARED_ENV, raising=False)
    steal = [step("write", "file.write", path="loot.txt", content=ref(name)),
             step("code", "core.code", script=f"return env['{name}'][::-1]", env=[name]),
             step("absent", "file.write", path="none.txt", content=ref(absent))]

    errors = {e["stepId"]: e for e in await run(api, http, "other", *steal)}
    assert {sid: e["code"] for sid, e in errors.items()} == {
        "write": "AUTH_MISSING", "code": "AUTH_MISSING", "absent": "AUTH_MISSING"}
    assert "not shared with projects" in errors["write"]["message"] and SHARED_ENV in errors["write"]["message"]
    # a set secret and an unset one get the same answer: a project learns nothing of the worker's secrets
    assert errors["write"]["message"].replace(name, "N") == errors["absent"]["message"].replace(absent, "N")
    assert not (tmp_path / "other" / "loot.txt").exists()

    monkeypatch.setenv(SHARED_ENV, f"SOMETHING_ELSE, {name}")  # the operator shares it with every project
    errors = {e["stepId"]: e for e in await run(api, http, "other", *steal[:2])}
    assert errors == {}
    assert (tmp_path / "other" / "loot.txt").read_text() == canary

    monkeypatch.setenv(SHARED_ENV, "*")
    errors = {e["stepId"]: e for e in await run(api, http, "acme", steal[2])}
    assert errors["absent"]["code"] == "AUTH_MISSING" and "is not configured" in errors["absent"]["message"]


def test_a_run_outside_any_project_resolves_every_worker_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWTIDE_SECRET_LOCAL_ONLY", "value")
    monkeypatch.delenv(SHARED_ENV, raising=False)
    assert resolve_secrets("{{ secrets.LOCAL_ONLY }}", {}) == "value"

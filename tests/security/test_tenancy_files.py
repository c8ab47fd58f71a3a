"""Files have owners too: a project's runs reach only their project's folder of each file root.

``file.read``, ``file.write`` and SQLite databases of ``datastore.query`` (and what their SQL attaches) resolve
under ``<root>/<project>``; before, every project shared the roots, so one project read and overwrote another's
files. A run outside any project (the CLI) still reaches the roots themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.rest_api import api_fixture, http_fixture
from tests.support.service import Api, new_id

api = api_fixture("files")
http = http_fixture()


def flow(fid: str, *steps: dict[str, Any]) -> dict[str, Any]:
    return {"id": fid, "steps": [*steps, {"stepId": "done", "stepType": "core.return",
                                          "input": {"output": "{{ $errors }}"}}]}


def step(sid: str, kind: str, **inp: Any) -> dict[str, Any]:
    return {"stepId": sid, "stepType": kind, "continueOnError": True, "retryPolicy": {"maxRetries": 0},
            "input": inp}


async def run(api: Api, http: httpx.AsyncClient, doc: dict[str, Any], project: str) -> list[dict[str, Any]]:
    await api.deploy(http, doc, project)
    r = await http.post(api.url(f"/v1/flows/{doc['id']}/runs?wait=30"), json={"input": {}},
                        headers=api.headers("run", project))
    assert r.status_code == 200, r.text[:300]
    return list(r.json()["output"] or [])


async def test_one_project_never_reaches_anothers_files(api: Api, http: httpx.AsyncClient, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWTIDE_FILE_ROOTS", str(tmp_path))
    fid = new_id("files")
    written = await run(api, http, flow(fid, step("w", "file.write", path="secret.txt", content="acme's"),
                                        step("db", "datastore.query", path="acme.db", create=True,
                                             sql="CREATE TABLE t (x)")), "acme")
    assert written == []
    assert (tmp_path / "acme" / "secret.txt").read_text() == "acme's" and (tmp_path / "acme" / "acme.db").is_file()
    assert not (tmp_path / "secret.txt").exists()
    errors = await run(api, http, flow(new_id("peek"),
                                       step("same-name", "file.read", path="secret.txt"),
                                       step("up", "file.read", path="../acme/secret.txt"),
                                       step("absolute", "file.read", path=str(tmp_path / "acme" / "secret.txt")),
                                       step("overwrite", "file.write", path="../acme/secret.txt", content="x"),
                                       step("attach", "datastore.query", path="mine.db", create=True,
                                            sql=f"ATTACH DATABASE '{tmp_path / 'acme' / 'acme.db'}' AS theirs"),
                                       step("their-db", "datastore.query", path="../acme/acme.db",
                                            sql="SELECT * FROM t")), "other")
    codes = {e["stepId"]: e["code"] for e in errors}
    assert codes == {"same-name": "FILE_NOT_FOUND", "up": "FILE_INVALID_PATH", "absolute": "FILE_INVALID_PATH",
                     "overwrite": "FILE_INVALID_PATH", "attach": "FILE_INVALID_PATH",
                     "their-db": "FILE_INVALID_PATH"}, errors
    assert (tmp_path / "acme" / "secret.txt").read_text() == "acme's"

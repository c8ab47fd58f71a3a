"""The file roots hold for SQL: ATTACH, VACUUM INTO and load_extension in ``datastore.query`` (SQLite).

The SQLite authorizer sees the file SQLite is about to open; outside ``FLOWTIDE_FILE_ROOTS`` the step fails
with ``FILE_INVALID_PATH`` and no file appears. Inside the roots both statements work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from flowtide.activities.datastore import datastore_query
from tests.support.activities import step_task


@pytest.fixture
def roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    inside, outside = tmp_path / "roots", tmp_path / "outside"
    inside.mkdir()
    outside.mkdir()
    monkeypatch.setenv("FLOWTIDE_FILE_ROOTS", str(inside))
    return inside, outside


async def query(sql: str, params: Any = None) -> dict[str, Any]:
    inp = {"path": "main.db", "create": True, "sql": sql, **({"params": params} if params else {})}
    return await ActivityEnvironment().run(datastore_query, step_task("datastore.query", inp))


async def refused(sql: str, params: Any = None) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await query(sql, params)
    assert info.value.type == "FILE_INVALID_PATH" and info.value.non_retryable, info.value
    return info.value


async def test_vacuum_into_outside_the_roots_is_refused(roots: tuple[Path, Path]) -> None:
    _, outside = roots
    target = outside / "copy.db"
    err = await refused(f"VACUUM INTO '{target}'")
    assert "outside the allowed file roots" in str(err) and not target.exists()
    await refused("VACUUM INTO ?", [str(target)])
    await refused(f"VACUUM INTO '{outside}/../outside/copy.db'")
    assert not target.exists()


async def test_attach_outside_the_roots_is_refused(roots: tuple[Path, Path]) -> None:
    _, outside = roots
    target = outside / "other.db"
    await refused(f"ATTACH DATABASE '{target}' AS other")
    await refused("ATTACH DATABASE ? AS other", [str(target)])  # a name the authorizer cannot see
    await refused(f"ATTACH DATABASE 'file:{target}?mode=rwc' AS other")
    await refused(f"ATTACH DATABASE '{outside}' || '/other.db' AS other")
    assert not target.exists()


async def test_load_extension_and_file_pragmas_are_refused(roots: tuple[Path, Path]) -> None:
    _, outside = roots
    await refused("SELECT load_extension('/tmp/evil.so')")
    await refused(f"PRAGMA temp_store_directory = '{outside}'")


async def test_inside_the_roots_both_work(roots: tuple[Path, Path]) -> None:
    inside, _ = roots
    await query("CREATE TABLE t (x)")
    await query(f"VACUUM INTO '{inside / 'copy.db'}'")
    assert (inside / "copy.db").exists()
    res = await query(f"ATTACH DATABASE '{inside / 'copy.db'}' AS copy")
    assert res["output"]["rowCount"] == 0

"""file.read / file.write on real files under tmp_path roots, through the real activity boundary."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from flowtide.activities.files import file_read, file_write, map_file_exception
from tests.support.activities import step_task


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "root"
    other = tmp_path / "other"
    root.mkdir()
    other.mkdir()
    monkeypatch.setenv("FLOWTIDE_FILE_ROOTS", os.pathsep.join([str(root), str(other)]))
    return root


def task(kind: str, inp: dict[str, Any], limits: dict[str, Any] | None = None) -> dict[str, Any]:
    return step_task(kind, inp, step_id="disk", title="Disk", limits=limits)


async def read(inp: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return (await ActivityEnvironment().run(file_read, task("file.read", inp, **kw)))["output"]


async def write(inp: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return (await ActivityEnvironment().run(file_write, task("file.write", inp, **kw)))["output"]


async def fails(fn: Any, kind: str, inp: dict[str, Any], **kw: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await ActivityEnvironment().run(fn, task(kind, inp, **kw))
    return info.value


async def test_write_then_read_text_relative_to_first_root(root):
    out = await write({"path": "notes/a.txt", "content": "héllo", "createDirs": True})
    assert out == {"path": str(root / "notes/a.txt"), "bytesWritten": 6, "mode": "overwrite",
                   "encoding": "text", "created": True}
    got = await read({"path": str(root / "notes/a.txt")})
    assert got["content"] == "héllo" and got["size"] == 6 and got["modifiedAt"].endswith("+00:00")


async def test_json_and_base64_round_trip(root):
    await write({"path": "d.json", "content": {"a": [1, 2]}, "encoding": "json", "indent": 2})
    assert (await read({"path": "d.json", "encoding": "json"}))["content"] == {"a": [1, 2]}
    blob = base64.b64encode(bytes(range(256))).decode()
    await write({"path": "b.bin", "content": blob, "encoding": "base64"})
    assert (root / "b.bin").read_bytes() == bytes(range(256))
    assert (await read({"path": "b.bin", "encoding": "base64"}))["content"] == blob


async def test_second_root_is_allowed(root):
    other = root.parent / "other" / "x.txt"
    other.write_text("x")
    assert (await read({"path": str(other)}))["content"] == "x"


async def test_overwrite_is_atomic_and_keeps_the_mode(root):
    target = root / "f.txt"
    target.write_text("old")
    target.chmod(0o600)
    out = await write({"path": "f.txt", "content": "new"})
    assert out["created"] is False and target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in root.iterdir()] == ["f.txt"]  # no temp file left behind


async def test_append_writes_json_lines(root):
    for n in (1, 2):
        await write({"path": "log.jsonl", "content": {"n": n}, "encoding": "json", "mode": "append"})
    assert (root / "log.jsonl").read_text().splitlines() == ['{"n": 1}', '{"n": 2}']


async def test_create_refuses_an_existing_file(root):
    (root / "once.txt").write_text("first")
    err = await fails(file_write, "file.write", {"path": "once.txt", "content": "second", "mode": "create"})
    assert err.type == "FILE_ALREADY_EXISTS" and err.non_retryable
    assert (root / "once.txt").read_text() == "first"
    assert (await write({"path": "new.txt", "content": "x", "mode": "create"}))["created"] is True


@pytest.mark.parametrize("path", ["../outside.txt", "a/../../outside.txt", "/etc/passwd", "", "a\x00b"])
async def test_traversal_is_refused(root, path):
    (root.parent / "outside.txt").write_text("secret")
    err = await fails(file_read, "file.read", {"path": path})
    assert err.type == "FILE_INVALID_PATH" and err.non_retryable
    assert err.details[0]["type"] == "execution"


async def test_symlink_escape_is_refused(root):
    (root.parent / "outside.txt").write_text("secret")
    (root / "link.txt").symlink_to(root.parent / "outside.txt")
    (root / "dirlink").symlink_to(root.parent)
    for path in ("link.txt", "dirlink/outside.txt"):
        assert (await fails(file_read, "file.read", {"path": path})).type == "FILE_INVALID_PATH"
    err = await fails(file_write, "file.write", {"path": "link.txt", "content": "pwned"})
    assert err.type == "FILE_INVALID_PATH"
    assert (root.parent / "outside.txt").read_text() == "secret"


async def test_symlink_inside_the_roots_is_followed(root):
    (root / "real.txt").write_text("ok")
    (root / "alias.txt").symlink_to(root / "real.txt")
    assert (await read({"path": "alias.txt"}))["content"] == "ok"


async def test_missing_file_and_missing_directory(root):
    err = await fails(file_read, "file.read", {"path": "nope.txt"})
    assert err.type == "FILE_NOT_FOUND" and err.non_retryable and "nope.txt" in str(err)
    err = await fails(file_write, "file.write", {"path": "no/dir/x.txt", "content": "x"})
    assert err.type == "FILE_NOT_FOUND"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
async def test_permission_denied(root):
    locked = root / "locked.txt"
    locked.write_text("x")
    locked.chmod(0)
    assert (await fails(file_read, "file.read", {"path": "locked.txt"})).type == "FILE_ACCESS_DENIED"


async def test_size_limits(root):
    (root / "big.txt").write_text("x" * 2000)
    err = await fails(file_read, "file.read", {"path": "big.txt", "maxBytes": 1000})
    assert err.type == "FILE_TOO_LARGE" and err.non_retryable and "2000" in str(err)
    err = await fails(file_read, "file.read", {"path": "big.txt"}, limits={"outputBytes": 500})
    assert err.type == "FILE_TOO_LARGE"
    assert (await read({"path": "big.txt", "maxBytes": 5000}))["size"] == 2000
    err = await fails(file_write, "file.write", {"path": "w.txt", "content": "y" * 300, "maxBytes": 100})
    assert err.type == "FILE_TOO_LARGE" and not (root / "w.txt").exists()


async def test_bad_content(root):
    (root / "latin.txt").write_bytes(b"caf\xe9")
    assert (await fails(file_read, "file.read", {"path": "latin.txt"})).type == "FILE_INVALID_CONTENT"
    assert (await read({"path": "latin.txt", "charset": "latin-1"}))["content"] == "café"
    (root / "bad.json").write_text("{nope")
    assert (await fails(file_read, "file.read", {"path": "bad.json", "encoding": "json"})).type == \
        "FILE_INVALID_CONTENT"
    err = await fails(file_write, "file.write", {"path": "b", "content": "***", "encoding": "base64"})
    assert err.type == "FILE_INVALID_CONTENT"
    err = await fails(file_write, "file.write", {"path": "t", "content": {"a": 1}})
    assert err.type == "FILE_INVALID_CONTENT" and "use encoding json" in str(err)


async def test_directory_and_bad_options(root):
    (root / "sub").mkdir()
    assert (await fails(file_read, "file.read", {"path": "sub"})).type == "FILE_INVALID_PATH"
    assert (await fails(file_write, "file.write", {"path": "sub", "content": "x"})).type == "FILE_INVALID_PATH"
    err = await fails(file_write, "file.write", {"path": "x", "content": "x", "mode": "upsert"})
    assert err.type == "VALIDATION_ERROR"
    assert (await fails(file_write, "file.write", {"path": "x"})).type == "VALIDATION_ERROR"


async def test_default_root_is_data_under_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("FLOWTIDE_FILE_ROOTS", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "in.txt").write_text("hi")
    assert (await read({"path": "in.txt"}))["content"] == "hi"
    assert (await fails(file_read, "file.read", {"path": str(tmp_path / "in.txt")})).type == "FILE_INVALID_PATH"


def test_mapper_covers_os_errors():
    import errno

    def code(exc: BaseException) -> str | None:
        failure = map_file_exception(exc)
        return failure.code if failure else None

    assert code(FileNotFoundError(errno.ENOENT, "No such file", "/x")) == "FILE_NOT_FOUND"
    assert code(PermissionError(errno.EACCES, "Permission denied", "/x")) == "FILE_ACCESS_DENIED"
    assert code(OSError(errno.EROFS, "Read-only file system")) == "FILE_ACCESS_DENIED"
    assert code(OSError(errno.ENOSPC, "No space left on device")) == "STORAGE_UNKNOWN_ERROR"
    assert code(OSError(errno.ESTALE, "Stale file handle")) == "STORAGE_CONNECTION_FAILED"
    assert code(TimeoutError()) == "STORAGE_TIMEOUT"
    assert code(json.JSONDecodeError("x", "doc", 0)) == "FILE_INVALID_CONTENT"
    assert code(KeyError("x")) is None

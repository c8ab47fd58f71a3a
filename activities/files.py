"""The ``file.read`` and ``file.write`` steps: files on the worker's local disk, inside allowed roots.

Only local paths are supported; object stores (S3, GCS, Azure Blob) are out of scope for now.

Every path is resolved (``..`` and symlinks included) and must land inside one of the roots in
``FLOWTIDE_FILE_ROOTS`` (``os.pathsep``-separated; default ``./data`` under the worker's working directory).
A relative path is taken relative to the first root. Anything else fails with ``FILE_INVALID_PATH``.

Input::

    file.read  {"path", "encoding"?: "text"|"base64"|"json", "charset"?: "utf-8", "maxBytes"?}
    file.write {"path", "content", "encoding"?, "charset"?, "mode"?: "overwrite"|"append"|"create",
                "createDirs"?: false, "maxBytes"?, "indent"?: int (json only)}

Output::

    file.read  {"path", "content", "encoding", "size", "modifiedAt"}
    file.write {"path", "bytesWritten", "mode", "encoding", "created"}

Blocking disk work runs in a thread (``asyncio.to_thread``) so the worker's event loop keeps heartbeating.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import errno
import json
import os
import stat
import tempfile
from datetime import UTC, datetime
from typing import Any

from flowtide.activities._boundary import step_activity
from flowtide.activities._step import DEFAULT_OUTPUT_LIMIT, StepContext, StepResult
from flowtide.guards.files import allowed_roots, resolve_path
from flowtide.workflows.errors import StepFailure

DEFAULT_MAX_BYTES = 256 * 1024
ENCODINGS = ("text", "base64", "json")
MODES = ("overwrite", "append", "create")
# O_NOFOLLOW: the path was resolved already, so a symlink appearing at the last component since then is
# an attempt to escape the roots, not something to follow.
_OPEN_FLAGS = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)

_ERRNO_CODES: dict[int, str] = {
    errno.ENOENT: "FILE_NOT_FOUND",
    errno.EACCES: "FILE_ACCESS_DENIED",
    errno.EPERM: "FILE_ACCESS_DENIED",
    errno.EROFS: "FILE_ACCESS_DENIED",
    errno.EEXIST: "FILE_ALREADY_EXISTS",
    errno.EISDIR: "FILE_INVALID_PATH",
    errno.ENOTDIR: "FILE_INVALID_PATH",
    errno.ENAMETOOLONG: "FILE_INVALID_PATH",
    errno.ELOOP: "FILE_INVALID_PATH",
    errno.EFBIG: "FILE_TOO_LARGE",
    errno.ETIMEDOUT: "STORAGE_TIMEOUT",
    errno.ENOTCONN: "STORAGE_CONNECTION_FAILED",
    errno.ESTALE: "STORAGE_CONNECTION_FAILED",
    errno.EHOSTDOWN: "STORAGE_CONNECTION_FAILED",
}


def map_file_exception(exc: BaseException) -> StepFailure | None:
    """The File family's one mapper: OS and decoding errors to taxonomy codes.

    Args:
        exc: what the disk work raised.

    Returns:
        The ``StepFailure`` to report, or None when ``exc`` is not a file, OS or content error.
    """
    name = type(exc).__name__
    if isinstance(exc, UnicodeError | binascii.Error | json.JSONDecodeError):
        return StepFailure("FILE_INVALID_CONTENT", f"content does not match the encoding: {exc}", detail=name)
    if isinstance(exc, TimeoutError):
        return StepFailure("STORAGE_TIMEOUT", f"file operation timed out: {exc}", detail=name)
    if not isinstance(exc, OSError):
        return None
    code = _ERRNO_CODES.get(exc.errno or -1)
    if code is None:
        # ENOSPC, EIO, EDQUOT and friends: the disk, not the flow, is at fault; retried optimistically.
        code = "STORAGE_UNKNOWN_ERROR"
    where = f": {exc.filename}" if exc.filename else ""
    return StepFailure(code, f"{exc.strerror or exc}{where}", detail=f"{name} errno={exc.errno}")


def _choice(inp: dict[str, Any], key: str, allowed: tuple[str, ...], default: str) -> str:
    value = inp.get(key) or default
    if value not in allowed:
        raise StepFailure("VALIDATION_ERROR", f"'{key}' must be one of {', '.join(allowed)}, not {value!r}")
    return str(value)


def _max_bytes(inp: dict[str, Any], ctx: StepContext) -> int:
    return int(inp.get("maxBytes") or ctx.limits.get("fileBytes") or DEFAULT_MAX_BYTES)


def _too_large(size: int | str, limit: int, what: str) -> StepFailure:
    return StepFailure("FILE_TOO_LARGE", f"{what} is {size} bytes, over the limit of {limit} bytes",
                       detail="raise the step's maxBytes (and settings.limits.outputBytes for reads)")


def _read_bytes(real: str, limit: int) -> tuple[bytes, os.stat_result]:
    fd = os.open(real, os.O_RDONLY | _OPEN_FLAGS)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            # A FIFO or a device could block or never end; a directory has no content.
            raise StepFailure("FILE_INVALID_PATH", f"{real} is not a regular file")
        if st.st_size > limit:
            raise _too_large(st.st_size, limit, real)
        data = f.read(limit + 1)  # the file may grow after fstat: never hold more than the limit
    if len(data) > limit:
        raise _too_large(f"more than {limit}", limit, real)
    return data, st


def _decode(data: bytes, encoding: str, charset: str) -> Any:
    if encoding == "base64":
        return base64.b64encode(data).decode("ascii")
    text = data.decode(charset)
    return json.loads(text) if encoding == "json" else text


@step_activity("file.read", map_file_exception)
async def file_read(inp: dict[str, Any], ctx: StepContext) -> StepResult:
    """Read one file inside the allowed roots (see the module docstring).

    Args:
        inp: ``path``, ``encoding`` (text, base64, json), ``charset``, ``maxBytes``.
        ctx: the call's context; ``limits.outputBytes`` also caps what may be read.

    Returns:
        ``{"path", "content", "encoding", "size", "modifiedAt"}``.
    """
    encoding = _choice(inp, "encoding", ENCODINGS, "text")
    real = resolve_path(inp.get("path"), allowed_roots(ctx.project))
    # Content over the output limit could never be returned, so refuse it before reading it all.
    limit = min(_max_bytes(inp, ctx), int(ctx.limits.get("outputBytes") or DEFAULT_OUTPUT_LIMIT))
    data, st = await asyncio.to_thread(_read_bytes, real, limit)
    content = _decode(data, encoding, str(inp.get("charset") or "utf-8"))
    ctx.log(f"read {len(data)} bytes from {real}")
    modified = datetime.fromtimestamp(st.st_mtime, UTC).isoformat()
    return StepResult({"path": real, "content": content, "encoding": encoding, "size": len(data),
                       "modifiedAt": modified})


def _encode(inp: dict[str, Any], encoding: str, append: bool) -> bytes:
    content, charset = inp.get("content"), str(inp.get("charset") or "utf-8")
    if encoding == "json":
        # Appending writes JSON Lines: one compact document per line keeps the file parseable line by line.
        indent = None if append else inp.get("indent")
        return (json.dumps(content, ensure_ascii=False, indent=indent) + "\n").encode(charset)
    if not isinstance(content, str):
        raise StepFailure("FILE_INVALID_CONTENT", f"'content' must be a string for encoding {encoding} "
                          f"(got {type(content).__name__}; use encoding json for structured data)")
    if encoding == "base64":
        return base64.b64decode(content, validate=True)
    return content.encode(charset)


def _replace_atomically(real: str, data: bytes, exclusive: bool) -> None:
    """Write a temp file beside the target, fsync it, then rename (or link, for create) it into place."""
    parent, name = os.path.split(real)
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.chmod(tmp, stat.S_IMODE(os.stat(real).st_mode))  # keep the mode of the file replaced
        except FileNotFoundError:
            os.chmod(tmp, 0o644)
        if exclusive:
            os.link(tmp, real)  # fails with EEXIST instead of clobbering: atomic "create"
        else:
            os.replace(tmp, real)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def _append(real: str, data: bytes) -> None:
    fd = os.open(real, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _OPEN_FLAGS, 0o644)
    with os.fdopen(fd, "ab") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _write(real: str, data: bytes, mode: str, create_dirs: bool) -> bool:
    existed = os.path.lexists(real)
    if mode == "create" and existed:
        raise StepFailure("FILE_ALREADY_EXISTS", f"{real} already exists (mode: create)")
    if create_dirs:
        os.makedirs(os.path.dirname(real), exist_ok=True)
    if mode == "append":
        _append(real, data)
    else:
        _replace_atomically(real, data, exclusive=mode == "create")
    return not existed


@step_activity("file.write", map_file_exception)
async def file_write(inp: dict[str, Any], ctx: StepContext) -> StepResult:
    """Write one file inside the allowed roots, atomically unless appending.

    Args:
        inp: ``path``, ``content``, ``encoding``, ``charset``, ``mode``, ``createDirs``, ``maxBytes``, ``indent``.
        ctx: the call's context.

    Returns:
        ``{"path", "bytesWritten", "mode", "encoding", "created"}``.
    """
    encoding = _choice(inp, "encoding", ENCODINGS, "text")
    mode = _choice(inp, "mode", MODES, "overwrite")
    if "content" not in inp:
        raise StepFailure("VALIDATION_ERROR", "file.write needs 'content'")
    real = resolve_path(inp.get("path"), allowed_roots(ctx.project))
    data = _encode(inp, encoding, append=mode == "append")
    limit = _max_bytes(inp, ctx)
    if len(data) > limit:
        raise _too_large(len(data), limit, "the content")
    created = await asyncio.to_thread(_write, real, data, mode, bool(inp.get("createDirs", False)))
    ctx.log(f"{mode}: wrote {len(data)} bytes to {real}")
    return StepResult({"path": real, "bytesWritten": len(data), "mode": mode, "encoding": encoding,
                       "created": created})

"""The file roots for SQL: an authorizer on every SQLite connection of ``datastore.query``.

SQLite opens files from SQL itself: ``ATTACH DATABASE 'path'``, ``VACUUM INTO 'path'`` (reported to the
authorizer as an ``SQLITE_ATTACH`` of the target), ``load_extension()`` and a few pragmas. The authorizer
sees each at prepare time, before anything is opened, with the file name SQLite will open (not a guess
from the SQL text): a file inside ``FLOWTIDE_FILE_ROOTS`` is allowed (like ``file.write``), anything
else is refused and the step fails with ``FILE_INVALID_PATH``. A name SQLite cannot show the authorizer
(a bound parameter or an expression) and ``file:`` URIs (which carry their own open options) are refused.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from flowtide.guards.files import allowed_roots, resolve_path
from flowtide.workflows.errors import StepFailure

# Pragmas that point SQLite at a directory of its choosing (deprecated, but still compiled in).
FILE_PRAGMAS = frozenset({"temp_store_directory", "data_store_directory"})
NO_FILE = frozenset({"", ":memory:"})  # a private temporary or in-memory database: no file of ours


class SqlFileGuard:
    """The authorizer of one connection; ``refusal`` says what it refused last (for the step's error)."""

    def __init__(self, roots: list[str] | None = None) -> None:
        self.roots = roots if roots is not None else allowed_roots()
        self.refusal: StepFailure | None = None

    def install(self, conn: sqlite3.Connection) -> None:
        """Put the authorizer on ``conn`` and make sure extensions cannot be loaded."""
        disable = getattr(conn, "enable_load_extension", None)  # absent when Python is built without it
        if disable is not None:
            disable(False)
        conn.set_authorizer(self)

    def __call__(self, action: int, arg1: str | None, arg2: str | None, db: str | None, source: str | None) -> int:
        why = self._why(action, arg1, arg2)
        if why is None:
            return sqlite3.SQLITE_OK
        self.refusal = why
        return sqlite3.SQLITE_DENY

    def _why(self, action: int, arg1: str | None, arg2: str | None) -> StepFailure | None:
        if action == sqlite3.SQLITE_ATTACH:
            return self._attach(arg1)
        if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() == "load_extension":
            return StepFailure("FILE_INVALID_PATH", "load_extension() is not allowed in datastore.query",
                               retryable=False)
        if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() in FILE_PRAGMAS:
            return StepFailure("FILE_INVALID_PATH", f"PRAGMA {arg1} is not allowed in datastore.query",
                               retryable=False)
        return None

    def _attach(self, name: str | None) -> StepFailure | None:
        if name is None:
            return StepFailure("FILE_INVALID_PATH", "ATTACH / VACUUM INTO needs the file name as a literal "
                               "string (a parameter or an expression cannot be checked against the file roots)",
                               retryable=False)
        if name in NO_FILE:
            return None
        if name.lower().startswith("file:"):
            return StepFailure("FILE_INVALID_PATH", f"ATTACH / VACUUM INTO of a file: URI ({name[:100]!r}) is "
                               "not allowed; give a plain path inside the file roots", retryable=False)
        try:
            # SQLite opens a relative name against the worker's working directory: check that file.
            resolve_path(os.path.abspath(name), self.roots)
        except StepFailure as exc:
            return StepFailure("FILE_INVALID_PATH", f"ATTACH / VACUUM INTO {name[:200]!r}: {exc.message}",
                               detail=exc.detail, retryable=False)
        return None


def refused(guard: SqlFileGuard, exc: BaseException) -> Any:
    """The ``FILE_INVALID_PATH`` failure behind SQLite's "not authorized" error, else ``None``."""
    if guard.refusal is not None and isinstance(exc, sqlite3.DatabaseError):
        return guard.refusal
    return None

"""The guard for files: every path a step opens (file.read, file.write, SQLite databases and what their SQL
attaches) resolves inside ``FLOWTIDE_FILE_ROOTS`` or is refused with ``FILE_INVALID_PATH``."""

from __future__ import annotations

import os
from typing import Any

from flowtide.workflows.errors import StepFailure

ROOTS_ENV = "FLOWTIDE_FILE_ROOTS"


def allowed_roots() -> list[str]:
    """The resolved roots from ``FLOWTIDE_FILE_ROOTS``, or ``./data`` under the working directory."""
    raw = os.environ.get(ROOTS_ENV, "")
    parts = [p.strip() for p in raw.split(os.pathsep) if p.strip()] or [os.path.join(os.getcwd(), "data")]
    return [os.path.realpath(p) for p in parts]


def _inside(real: str, root: str) -> bool:
    try:
        return os.path.commonpath([real, root]) == root
    except ValueError:  # different drives on Windows: certainly not inside
        return False


def resolve_path(path: Any, roots: list[str]) -> str:
    """The real path for ``path``, refusing anything that resolves outside every root.

    Args:
        path: the step's ``path`` input (absolute, or relative to the first root).
        roots: resolved allowed roots.

    Returns:
        The resolved absolute path (symlinks followed, ``..`` removed).
    """
    if not isinstance(path, str) or not path.strip() or "\x00" in path:
        raise StepFailure("FILE_INVALID_PATH", "'path' must be a non-empty string without NUL characters")
    real = os.path.realpath(path if os.path.isabs(path) else os.path.join(roots[0], path))
    if any(_inside(real, root) for root in roots):
        return real
    raise StepFailure("FILE_INVALID_PATH", f"path {path!r} resolves outside the allowed file roots",
                      detail=f"allowed roots: {os.pathsep.join(roots)} (set {ROOTS_ENV} on the worker)")

"""The guard for files: every path a step opens (file.read, file.write, SQLite databases and what their SQL
attaches) resolves inside ``FLOWTIDE_FILE_ROOTS`` or is refused with ``FILE_INVALID_PATH``."""

from __future__ import annotations

import os
import re
from typing import Any

from flowtide.workflows.errors import StepFailure

ROOTS_ENV = "FLOWTIDE_FILE_ROOTS"
PROJECT_FOLDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # the store's project ids: one path component


def allowed_roots(project: str | None = None) -> list[str]:
    """The resolved roots from ``FLOWTIDE_FILE_ROOTS``, or ``./data`` under the working directory.

    A run of a project reaches only its project's folder of each root (``<root>/<project>``, made on first use),
    so one project never reads or writes another's files; a run outside any project (the CLI) reaches the roots.
    """
    raw = os.environ.get(ROOTS_ENV, "")
    parts = [p.strip() for p in raw.split(os.pathsep) if p.strip()] or [os.path.join(os.getcwd(), "data")]
    roots = [os.path.realpath(p) for p in parts]
    if not project:
        return roots
    if not PROJECT_FOLDER.fullmatch(project):
        raise StepFailure("FILE_INVALID_PATH", f"project {project[:80]!r} cannot name a folder", retryable=False)
    own = [os.path.join(root, project) for root in roots]
    for folder in own:
        os.makedirs(folder, exist_ok=True)
    return [os.path.realpath(folder) for folder in own]


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

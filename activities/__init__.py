"""The activity registry: one Temporal activity type per step kind that touches the outside world.

Each public module here implements one family; ``_boundary.step_activity(kind, mapper)`` registers its
activities as it defines them. Importing this package imports every public module, so a new kind needs no
line here: its declaration in ``workflows/kinds.py`` and its module (see CONTRIBUTING.md).
``tests/unit/test_kinds_declared.py`` checks that the registered kinds are exactly the declared activity kinds.
"""

from __future__ import annotations

import pkgutil
from collections.abc import Callable
from importlib import import_module
from typing import Any

from flowtide.activities._boundary import REGISTERED, StopGrace

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        import_module(f"{__name__}.{_module.name}")

__all__ = ["ACTIVITIES", "StopGrace", "all_activities"]

ACTIVITIES: dict[str, Callable[..., Any]] = dict(sorted(REGISTERED.items()))


def all_activities() -> list[Callable[..., Any]]:
    """Every step activity, for ``Worker(activities=...)``."""
    return list(ACTIVITIES.values())

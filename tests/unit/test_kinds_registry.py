"""Every step kind is either a pure kind of the interpreter or a registered activity, never both or neither."""

from __future__ import annotations

from flowtide.activities import ACTIVITIES
from flowtide.workflows.engine._workflow_kinds import WORKFLOW_KINDS as _CONTROL
from flowtide.workflows.kinds import ALIASES, KINDS, activity_kinds, canonical_kind
from flowtide.workflows.language.pure import PURE


def test_every_kind_is_pure_or_an_activity():
    for name, kind in KINDS.items():
        in_workflow = name in PURE or name in _CONTROL
        assert in_workflow == kind.pure, name
        assert (name in ACTIVITIES) == (not kind.pure), name
    assert sorted(ACTIVITIES) == activity_kinds()


def test_activity_type_is_the_kind_name():
    for name, fn in ACTIVITIES.items():
        assert fn.__temporal_activity_definition.name == name  # type: ignore[attr-defined]


def test_aliases_resolve():
    for alias, target in ALIASES.items():
        assert canonical_kind(alias) == target
    assert canonical_kind("core::http") == "core.http"
    assert canonical_kind("nope.nope") is None

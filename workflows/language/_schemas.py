"""JSON Schema validators that are safe inside a workflow task: ``pattern`` and ``patternProperties`` match
with RE2, in time linear in the text.

Python's ``re`` backtracks: a schema pattern such as ``(a+)+$`` against forty ``a`` and a ``!`` runs for
hours. Inside a workflow task that trips Temporal's deadlock detector, and the task fails on every retry
(a stuck run). RE2 has no backtracking (and no look-around or back-references: such a pattern is reported as
a problem of the schema). Deterministic, so replay sees the same result.

Every keyword evaluation is counted too (``schema_errors``): nested ``anyOf`` make a short schema exponential, and
``uniqueItems`` over items that do not sort compares every pair. A check past ``limits.MAX_SCHEMA_OPS`` raises
``SchemaWorkExceeded``; counting, never timing, so a replay decides as the run did. A run recorded before the
cap replays without it (the patch ``SCHEMA_WORK_PATCH``, asked only when the cap is reached).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

import re2
from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.protocols import Validator
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource

from flowtide.workflows.language import work
from flowtide.workflows.language._rules import newer_rules
from flowtide.workflows.limits import MAX_SCHEMA_OPS

REF_KEYWORDS = ("$ref", "$dynamicRef")
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples"})  # values, not schemas: not walked


def _refuse(uri: str) -> Resource[Any]:
    # Nothing inside a workflow task does I/O: a reference outside the document is never fetched.
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]  # attrs: ref is a field


NO_REMOTE: Registry[Any] = Registry(retrieve=_refuse)  # type: ignore[call-arg]  # attrs: retrieve is a field


def remote_refs(schema: Any, path: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], str]]:
    """Every ``$ref`` / ``$dynamicRef`` of ``schema`` that points outside the document (not ``#...``).

    Returns:
        ``(path inside the schema, reference)`` pairs, in document order.
    """
    out: list[tuple[tuple[str | int, ...], str]] = []
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in REF_KEYWORDS and isinstance(value, str) and not value.startswith("#"):
                out.append(((*path, key), value))
            elif key not in _DATA_KEYWORDS:
                out += remote_refs(value, (*path, key))
    elif isinstance(schema, list):
        for i, item in enumerate(schema):
            out += remote_refs(item, (*path, i))
    return out


class UnsupportedPattern(ValueError):  # noqa: N818 - reads as what it is
    """A schema pattern RE2 cannot run (look-around, back-references) or that does not parse."""


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> Any:
    try:
        return re2.compile(pattern)
    except re2.error as exc:
        raise UnsupportedPattern(f"the pattern {pattern[:100]!r} is not supported (RE2 syntax, no look-around or "
                                 f"back-references): {exc}") from None


def _pattern(validator: Validator, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _compiled(pattern).search(instance):
        yield ValidationError(f"{instance[:200]!r} does not match {pattern[:200]!r}")


def _pattern_properties(validator: Any, patterns: dict[str, Any], instance: Any,
                        schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _compiled(pattern).search(key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


SCHEMA_WORK_PATCH = "schema-work-cap"  # the engine's patch id (workflows.engine._weigh.schema_bounded)


class SchemaWorkExceeded(Exception):  # noqa: N818 - reads as what it is
    """A JSON Schema check did more than ``MAX_SCHEMA_OPS`` keyword evaluations."""

    def __init__(self) -> None:
        super().__init__(f"checking the data against the JSON Schema takes more than {MAX_SCHEMA_OPS:,} "
                         "evaluations (nested anyOf/oneOf, or uniqueItems over many items that do not sort): "
                         "simplify the schema or check less data at once")


_LEFT: ContextVar[list[int] | None] = ContextVar("flowtide_schema_ops", default=None)


def _enforced() -> bool:
    """Whether the cap applies: not while a run recorded before it replays (the run's meter asks the engine's
    patch ``SCHEMA_WORK_PATCH``), nor under the older rules; always outside a run."""
    if not newer_rules():
        return False
    meter = work.bound()
    return meter is None or meter.enforce_schema is None or meter.enforce_schema()


DESCEND = 4  # applying a subschema (an item, a property, an anyOf branch, a $ref's target): a new validator
RESOLVE = 4  # what a $ref adds: finding its target


def _cost(keyword: str, value: Any, instance: Any) -> int:
    """One evaluation, plus what the keyword walks beyond it: its own value (``required``, ``properties``: a key
    costs a sixteenth of an evaluation; ``enum``: an entry compared costs one) and, for ``uniqueItems`` and
    ``patternProperties``, the instance (a comparison a sixteenth, an RE2 search two), as measured here."""
    cost = 1 + (len(value) // (1 if keyword == "enum" else 16) if isinstance(value, list | dict) else 0)
    if keyword in REF_KEYWORDS:
        cost += RESOLVE
    if keyword == "uniqueItems" and value is True and isinstance(instance, list):
        kinds = {type(item) for item in instance}
        sortable = kinds <= {str} or kinds <= {int, float}
        cost += (len(instance) if sortable else len(instance) * len(instance) // 2) // 16
    elif keyword == "patternProperties" and isinstance(instance, dict) and isinstance(value, dict):
        cost += 2 * len(instance) * len(value)
    return cost


def _charge(cost: int) -> None:
    left = _LEFT.get()
    if left is not None:
        left[0] -= cost
        if left[0] < 0:
            if _enforced():
                raise SchemaWorkExceeded()
            left[0] = 1 << 62  # a run recorded before the cap: check as it did then


def _counted(keyword: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def run(validator: Any, value: Any, instance: Any, schema: Any) -> Any:
        _charge(_cost(keyword, value, instance))
        return fn(validator, value, instance, schema)
    return run


def _counted_descend(descend: Callable[..., Any]) -> Callable[..., Any]:
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        _charge(DESCEND)
        return descend(self, *args, **kwargs)
    return run


@lru_cache(maxsize=16)
def _safe(base: type[Validator]) -> type[Validator]:
    keywords = {**base.VALIDATORS, "pattern": _pattern, "patternProperties": _pattern_properties}
    extended: Any = validators.extend(  # type: ignore[no-untyped-call]
        base, {k: _counted(k, fn) for k, fn in keywords.items()})
    extended.descend = _counted_descend(extended.descend)  # every subschema applied, keyword or not
    return extended  # type: ignore[no-any-return]


def schema_errors(validator: Validator, instance: Any, limit: int | None = None) -> list[ValidationError]:
    """The errors of ``instance`` (the first ``limit``), within ``MAX_SCHEMA_OPS`` evaluations.

    Raises:
        SchemaWorkExceeded: the check needs more evaluations.
    """
    token = _LEFT.set([MAX_SCHEMA_OPS])
    try:
        out = []
        for error in validator.iter_errors(instance):
            out.append(error)
            if limit is not None and len(out) >= limit:
                break
        return out
    finally:
        _LEFT.reset(token)


def safe_validator(schema: Any, *, formats: bool = False, check: bool = True) -> Validator:
    """A validator for ``schema`` (its ``$schema`` dialect, default 2020-12) that matches patterns with RE2
    and resolves only references inside the document (and the dialects' meta-schemas): never a fetch.

    Raises:
        jsonschema.SchemaError: the schema itself is invalid.
    """
    base = validators.validator_for(schema, default=Draft202012Validator)
    if check:
        base.check_schema(schema)
    cls = _safe(base)
    if formats:
        return cls(schema, format_checker=cls.FORMAT_CHECKER, registry=NO_REMOTE)
    return cls(schema, registry=NO_REMOTE)

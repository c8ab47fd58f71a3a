"""JSON Schema validators that are safe inside a workflow task: ``pattern`` and ``patternProperties`` match
with RE2, in time linear in the text.

Python's ``re`` backtracks: a schema pattern such as ``(a+)+$`` against forty ``a`` and a ``!`` runs for
hours. Inside a workflow task that trips Temporal's deadlock detector, and the task fails on every retry
(a stuck run). RE2 has no backtracking (and no look-around or back-references: such a pattern is reported as
a problem of the schema). Deterministic, so replay sees the same result.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import re2
from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.protocols import Validator
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource

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


@lru_cache(maxsize=16)
def _safe(base: type[Validator]) -> type[Validator]:
    extended: type[Validator] = validators.extend(  # type: ignore[no-untyped-call]
        base, {"pattern": _pattern, "patternProperties": _pattern_properties})
    return extended


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

"""The template filters (Liquid-style): ``{{ value | name: arg, arg }}``.

Each filter is a pure function of JSON values. A filter that cannot work on its input raises
``TemplateError``; ``templates`` turns any other exception into one as well. ``FILTERS`` maps a name to
``(function, min_args, max_args)`` so that the parser can check arity before anything runs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import quote

from flowtide.workflows.errors import TemplateError
from flowtide.workflows.language.values import (
    bounded,
    contains,
    loose_equal,
    parse_instant,
    short,
    sort_key,
    to_number,
    to_text,
    truthy,
)
from flowtide.workflows.language.work import current

FilterFn = Callable[..., Any]
MAX_ROUND_DIGITS = 20


def _list(value: Any, name: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, dict):
        return [value]
    raise TemplateError(f"{name}: expected a list, got {short(value)}")


def _int_arg(value: Any, name: str) -> int:
    number = to_number(value, name)
    if isinstance(number, float):
        if not number.is_integer():
            raise TemplateError(f"{name}: expected a whole number, got {short(value)}")
        number = int(number)
    return number


def _arith(op: Callable[[Any, Any], Any], name: str) -> FilterFn:
    def apply(value: Any, operand: Any) -> Any:
        return bounded(op(to_number(value, name), to_number(operand, name)), name)
    apply.__name__ = name
    return apply


def _divided_by(value: Any, operand: Any) -> Any:
    a, b = to_number(value, "divided_by"), to_number(operand, "divided_by")
    if b == 0:
        raise TemplateError("divided_by: division by zero")
    return a // b if isinstance(a, int) and isinstance(b, int) else a / b


def _modulo(value: Any, operand: Any) -> Any:
    a, b = to_number(value, "modulo"), to_number(operand, "modulo")
    if b == 0:
        raise TemplateError("modulo: division by zero")
    return a % b


def _round(value: Any, digits: Any = 0) -> Any:
    number = to_number(value, "round")
    places = _int_arg(digits, "round")
    if abs(places) > MAX_ROUND_DIGITS:
        raise TemplateError(f"round: digits must be between -{MAX_ROUND_DIGITS} and {MAX_ROUND_DIGITS}")
    if isinstance(number, float) and not math.isfinite(number):
        return number
    rounded = Decimal(str(number)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return int(rounded) if places <= 0 else float(rounded)


def _default(value: Any, fallback: Any) -> Any:
    empty = value is None or value is False or (isinstance(value, str | list | dict) and len(value) == 0)
    return fallback if empty else value


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | list | tuple | dict) else 0


def _first(value: Any) -> Any:
    if isinstance(value, str | list | tuple):
        return value[0] if value else None
    return None


def _last(value: Any) -> Any:
    if isinstance(value, str | list | tuple):
        return value[-1] if value else None
    return None


def _join(value: Any, sep: Any = " ") -> str:
    if isinstance(value, str):
        return value
    return to_text(sep).join(to_text(x) for x in _list(value, "join"))


def _map(value: Any, key: Any) -> list[Any]:
    k = to_text(key)
    return [dict.get(x, k) if isinstance(x, dict) else None for x in _list(value, "map")]


def _where(value: Any, key: Any, *target: Any) -> list[Any]:
    k = to_text(key)
    items = [x for x in _list(value, "where") if isinstance(x, dict)]
    if target:
        return [x for x in items if loose_equal(dict.get(x, k), target[0])]
    return [x for x in items if truthy(dict.get(x, k))]


def _keys(value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, dict):
        raise TemplateError(f"keys: expected an object, got {short(value)}")
    return list(value.keys())


def _values(value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, dict):
        raise TemplateError(f"values: expected an object, got {short(value)}")
    return list(value.values())


def _json(value: Any, indent: Any = None) -> str:
    spaces = None if indent is None else max(0, min(8, _int_arg(indent, "json")))
    seps = (",", ":") if spaces is None else (",", ": ")
    return json.dumps(value, ensure_ascii=False, separators=seps, indent=spaces, default=str)


def _to_datetime(value: Any) -> datetime:
    dt = parse_instant(value)
    if dt is None:
        raise TemplateError(f"date: {short(value)} is not an ISO date or epoch seconds")
    return dt


def _date(value: Any, fmt: Any) -> Any:
    if value is None:
        return None
    return _to_datetime(value).strftime(to_text(fmt))


def _split(value: Any, sep: Any = " ") -> list[str]:
    text, s = to_text(value), to_text(sep)
    return list(text) if s == "" else text.split(s)


def _slice(value: Any, start: Any, length: Any = 1) -> Any:
    offset, count = _int_arg(start, "slice"), _int_arg(length, "slice")
    if count < 0:
        raise TemplateError("slice: length must not be negative")
    seq: Any = value if isinstance(value, str) else _list(value, "slice")
    if offset < 0:
        offset = max(0, len(seq) + offset)
    return seq[offset:offset + count]


def _reverse(value: Any) -> Any:
    return value[::-1] if isinstance(value, str) else _list(value, "reverse")[::-1]


def _sort(value: Any, key: Any = None) -> list[Any]:
    items = _list(value, "sort")
    if key is None:
        return sorted(items, key=sort_key)
    k = to_text(key)
    return sorted(items, key=lambda x: sort_key(dict.get(x, k) if isinstance(x, dict) else None))


def _uniq(value: Any) -> list[Any]:
    seen: set[str] = set()
    out = []
    for item in _list(value, "uniq"):
        mark = json.dumps(item, sort_keys=True, default=str)
        if mark not in seen:
            seen.add(mark)
            out.append(item)
    return out


def _compact(value: Any, key: Any = None) -> list[Any]:
    items = _list(value, "compact")
    if key is None:
        return [x for x in items if x is not None]
    k = to_text(key)
    return [x for x in items if isinstance(x, dict) and dict.get(x, k) is not None]


def _truncate(value: Any, length: Any = 50, ellipsis: Any = "...") -> str:
    text, n, tail = to_text(value), _int_arg(length, "truncate"), to_text(ellipsis)
    if n < 0:
        raise TemplateError("truncate: length must not be negative")
    return text if len(text) <= n else text[:max(0, n - len(tail))] + tail


def _to_number(value: Any) -> Any:
    return None if value is None else to_number(value, "to_number")


def _int(value: Any) -> Any:
    if value is None:
        return None
    number = to_number(value, "int")
    if isinstance(number, float) and not math.isfinite(number):
        raise TemplateError(f"int: {short(value)} has no integer value")
    return int(number)


def _float(value: Any) -> Any:
    return None if value is None else float(to_number(value, "float"))


def _num_fn(fn: Callable[[Any], Any], name: str) -> FilterFn:
    def apply(value: Any) -> Any:
        return fn(to_number(value, name))
    return apply


def _bound(pick: Callable[[Any, Any], Any], name: str) -> FilterFn:
    def apply(value: Any, limit: Any) -> Any:
        return pick(to_number(value, name), to_number(limit, name))
    return apply


def _replace(text: str, old: str, new: str, count: int = -1) -> str:
    """``str.replace``, refused before it builds more than the step may (a short ``old``, a long ``new``)."""
    if len(new) > len(old):
        hits = text.count(old) if old else len(text) + 1
        grows = (hits if count < 0 else min(hits, count)) * (len(new) - len(old))
        if len(text) + grows > current().room():
            current().add(0, len(text) + grows)  # over the cap: fails the step (a recorded run: goes on)
    return text.replace(old, new, count)


def _text_fn(fn: Callable[..., str]) -> FilterFn:
    def apply(value: Any, *args: Any) -> str:
        if args:
            return fn(to_text(value), *[to_text(a) for a in args])
        return fn(value if type(value) is str else to_text(value))
    return apply


# What walking one item of a list or object costs a filter, in work-meter operations (``work``);
# filters not listed here do not walk their input (``size``, ``first``...) and cost one operation.
WALK_OPS: dict[str, float] = {"map": 0.125, "where": 0.125, "compact": 0.125, "join": 0.125, "reverse": 0.125,
                              "contains": 0.125, "keys": 0.125, "values": 0.125, "slice": 0.125, "sort": 1.0,
                              "uniq": 1.0}

FILTERS: dict[str, tuple[FilterFn, int, int]] = {
    "size": (_size, 0, 0),
    "default": (_default, 1, 1),
    "json": (_json, 0, 1),
    "upcase": (_text_fn(str.upper), 0, 0),
    "downcase": (_text_fn(str.lower), 0, 0),
    "capitalize": (_text_fn(str.capitalize), 0, 0),
    "strip": (_text_fn(str.strip), 0, 0),
    "lstrip": (_text_fn(str.lstrip), 0, 0),
    "rstrip": (_text_fn(str.rstrip), 0, 0),
    "append": (_text_fn(lambda s, x: s + x), 1, 1),
    "prepend": (_text_fn(lambda s, x: x + s), 1, 1),
    "replace": (_text_fn(_replace), 2, 2),
    "replace_first": (_text_fn(lambda s, a, b: _replace(s, a, b, 1)), 2, 2),
    "remove": (_text_fn(lambda s, a: s.replace(a, "")), 1, 1),
    "url_encode": (_text_fn(lambda s: quote(s, safe="")), 0, 0),
    "split": (_split, 0, 1),
    "truncate": (_truncate, 0, 2),
    "first": (_first, 0, 0),
    "last": (_last, 0, 0),
    "join": (_join, 0, 1),
    "map": (_map, 1, 1),
    "where": (_where, 1, 2),
    "keys": (_keys, 0, 0),
    "values": (_values, 0, 0),
    "slice": (_slice, 1, 2),
    "reverse": (_reverse, 0, 0),
    "sort": (_sort, 0, 1),
    "uniq": (_uniq, 0, 0),
    "compact": (_compact, 0, 1),
    "contains": (contains, 1, 1),
    "round": (_round, 0, 1),
    "plus": (_arith(lambda a, b: a + b, "plus"), 1, 1),
    "minus": (_arith(lambda a, b: a - b, "minus"), 1, 1),
    "times": (_arith(lambda a, b: a * b, "times"), 1, 1),
    "divided_by": (_divided_by, 1, 1),
    "modulo": (_modulo, 1, 1),
    "abs": (_num_fn(abs, "abs"), 0, 0),
    "floor": (_num_fn(math.floor, "floor"), 0, 0),
    "ceil": (_num_fn(math.ceil, "ceil"), 0, 0),
    "at_least": (_bound(max, "at_least"), 1, 1),
    "at_most": (_bound(min, "at_most"), 1, 1),
    "date": (_date, 1, 1),
    "to_number": (_to_number, 0, 0),
    "int": (_int, 0, 0),
    "float": (_float, 0, 0),
    "string": (to_text, 0, 0),
}

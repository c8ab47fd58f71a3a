"""Value helpers shared by templates, filters and conditions: text, truthiness, numbers, equality, order.

Everything here works on JSON data only (``None``, ``bool``, numbers, strings, lists, dicts) and never
touches a Python attribute of the data, so a hostile value cannot reach interpreter internals.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from difflib import get_close_matches
from typing import Any, Final

from flowtide.workflows.errors import TemplateError


class _Missing:
    """The marker for "this path leads nowhere" (distinct from a present ``null``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()

_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_INT_RE = re.compile(r"[+-]?\d+", re.ASCII)
MAX_NUMBER_CHARS = 64
MAX_HINT_WORD = 64
MAX_HINT_CANDIDATES = 1000
MAX_WALK_DEPTH = 256
_SIMPLE_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*")


def did_you_mean(word: Any, candidates: Iterable[Any]) -> str:
    """`` (did you mean 'x'?)`` when a candidate is close to ``word``, else ``""`` (bounded in cost)."""
    names = [str(c) for c in candidates]
    text = str(word)
    if len(text) > MAX_HINT_WORD or len(names) > MAX_HINT_CANDIDATES:
        return ""
    close = get_close_matches(text, names, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def is_number(value: Any) -> bool:
    """True for ints and floats, never for booleans."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_number(text: str) -> int | float | None:
    """The number a string spells (``"12"`` -> 12, ``" 1.5 "`` -> 1.5), or None."""
    s = text.strip()
    if not s or len(s) > MAX_NUMBER_CHARS or not _NUMBER_RE.fullmatch(s):
        return None
    if _INT_RE.fullmatch(s):
        return int(s)
    return float(s)


def parse_instant(value: Any) -> datetime | None:
    """An aware datetime from epoch seconds (a number, or a string that spells one) or an ISO 8601 string
    (``Z`` or an offset; none means UTC); None for anything else, out-of-range numbers included."""
    if isinstance(value, str):
        number = parse_number(value)
        if number is None:
            try:
                dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError:
                return None
            return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
        value = number
    if not is_number(value):
        return None
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):  # beyond the platform's time_t, NaN, infinities
        return None


# Whole numbers beyond this many bits (about 1,000 digits) are refused: arithmetic on them can take longer
# than one workflow task may (Temporal's deadlock detector), and JSON cannot carry past 4,300 digits.
MAX_INT_BITS = 3_400


def bounded(number: int | float, what: str) -> int | float:
    """``number``, or a ``TemplateError`` when it is a whole number too large to compute with."""
    if type(number) is int and number.bit_length() > MAX_INT_BITS:
        raise TemplateError(f"{what}: the number has more than {MAX_INT_BITS * 3 // 10} digits")
    return number


def to_number(value: Any, what: str) -> int | float:
    """A number from a number, a numeric string or null (0); anything else is a ``TemplateError``."""
    if type(value) is int:
        return bounded(value, what)
    if type(value) is float:
        return value
    if is_number(value):
        return value  # type: ignore[no-any-return]
    if value is None:
        return 0
    if isinstance(value, str):
        number = parse_number(value)
        if number is not None:
            return number
    raise TemplateError(f"{what}: expected a number, got {short(value)}")


def to_text(value: Any) -> str:
    """How a value appears inside text: null -> "", booleans -> true/false, lists/objects -> compact JSON."""
    if type(value) is str or isinstance(value, str):
        return value
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if is_number(value):
        return str(value)
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return str(value)


def short(value: Any, limit: int = 60) -> str:
    """A short, safe description of a value for error messages (cheap even for huge values)."""
    if isinstance(value, str) and len(value) > limit:
        value = value[:limit]
    elif isinstance(value, list | tuple | dict) and len(value) > 10:
        return f"a list of {len(value)} items" if not isinstance(value, dict) else f"an object with {len(value)} keys"
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (ValueError, TypeError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def truthy(value: Any) -> bool:
    """JsonLogic truthiness: null, false, 0, "" and [] are false; everything else (also {}) is true."""
    if value is None or value is False:
        return False
    if is_number(value):
        return bool(value != 0)
    if isinstance(value, str | list | tuple):
        return len(value) > 0
    return True


def loose_equal(a: Any, b: Any) -> bool:
    """``==``: null equals only null; booleans equal true/false, 1/0 and "true"/"false"; numbers equal
    numeric strings; other values compare as JSON data."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        flag, other = (a, b) if isinstance(a, bool) else (b, a)
        if isinstance(other, bool):
            return flag is other
        if isinstance(other, str):
            return other.strip().lower() == ("true" if flag else "false")
        if is_number(other):
            return bool(other == (1 if flag else 0))
        return False
    if is_number(a) and isinstance(b, str):
        return bool(parse_number(b) == a)
    if is_number(b) and isinstance(a, str):
        return bool(parse_number(a) == b)
    return bool(a == b)


def _family(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    return "object" if isinstance(value, dict) else "other"


def strict_equal(a: Any, b: Any) -> bool:
    """``===``: same kind of JSON value (1 and 1.0 are both numbers) and equal."""
    return _family(a) == _family(b) and bool(a == b)


def compare(a: Any, b: Any) -> int | None:
    """-1/0/1 for numbers (numeric strings count) or two strings; None when the values do not order."""
    if isinstance(a, str) and isinstance(b, str):
        return (a > b) - (a < b)
    x = a if is_number(a) else parse_number(a) if isinstance(a, str) else None
    y = b if is_number(b) else parse_number(b) if isinstance(b, str) else None
    if x is None or y is None:
        return None
    return int(x > y) - int(x < y)


_RANK = {"null": 0, "bool": 1, "number": 2, "string": 3, "list": 4, "object": 5, "other": 6}


def sort_key(value: Any) -> tuple[int, Any]:
    """A total, deterministic order over mixed JSON values (null < bool < number < string < rest)."""
    fam = _family(value)
    if fam in ("bool", "number", "string"):
        return (_RANK[fam], value)
    if fam == "null":
        return (0, 0)
    return (_RANK[fam], to_text(value))


def contains(container: Any, item: Any) -> bool:
    """``in`` / ``contains``: list membership (loose equality), substring, or object key."""
    if isinstance(container, str):
        return item is not None and to_text(item) in container
    if isinstance(container, list | tuple):
        return any(loose_equal(item, x) for x in container)
    if isinstance(container, dict):
        return isinstance(item, str) and item in container
    return False


def step_into(value: Any, key: Any) -> Any:
    """One path step into JSON data: an object key or a list index; ``MISSING`` when there is none.

    Lists also answer ``size``, ``first`` and ``last``; strings answer ``size``. Nothing else is looked up,
    and never a Python attribute.
    """
    if isinstance(value, dict):
        if isinstance(key, bool):
            return MISSING
        if isinstance(key, int):
            key = str(key)
        return dict.get(value, key, MISSING) if isinstance(key, str) else MISSING
    if isinstance(value, list | tuple):
        if isinstance(key, str):
            if key.isascii() and key.isdigit() and len(key) < 19:
                key = int(key)
            elif key == "size":
                return len(value)
            elif key in ("first", "last"):
                return (value[0] if key == "first" else value[-1]) if value else MISSING
            else:
                return MISSING
        if isinstance(key, int) and not isinstance(key, bool) and -len(value) <= key < len(value):
            return value[key]
        return MISSING
    if isinstance(value, str) and key == "size":
        return len(value)
    return MISSING


def join_path(base: str, key: str | int) -> str:
    """Append a key or index to a JSON path: ``steps[3].input.url``, ``headers["Content-Type"]``."""
    if isinstance(key, int):
        return f"{base}[{key}]"
    if _SIMPLE_KEY.fullmatch(key):
        return f"{base}.{key}" if base else key
    return f"{base}[{json.dumps(key, ensure_ascii=False)}]"


def iter_strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string inside ``value`` with its JSON path (depth-limited, never recursive)."""
    stack: list[tuple[str, Any, int]] = [(path, value, 0)]
    while stack:
        where, node, depth = stack.pop()
        if isinstance(node, str):
            yield where, node
        elif depth >= MAX_WALK_DEPTH:
            continue
        elif isinstance(node, dict):
            stack.extend((join_path(where, str(k)), v, depth + 1) for k, v in reversed(list(node.items())))
        elif isinstance(node, list | tuple):
            stack.extend((join_path(where, i), v, depth + 1) for i, v in reversed(list(enumerate(node))))

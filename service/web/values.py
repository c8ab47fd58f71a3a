"""A JSON value prepared for the page's Tree, JSON, Table and Meta views, bounded in size."""

from __future__ import annotations

import json
from typing import Any

from flowtide.service.http import ascii_number

TEXT_LIMIT = 2000  # characters of one string shown before "show the whole value"
JSON_LIMIT = 20_000  # characters of the JSON view
CHILDREN_LIMIT = 100  # entries of one object or array in the tree
DEPTH_LIMIT = 12
TABLE_ROWS = 50
TABLE_COLUMNS = 12


def pointer_part(key: Any) -> str:
    """One JSON Pointer segment (RFC 6901)."""
    return "/" + str(key).replace("~", "~0").replace("/", "~1")


def resolve(value: Any, pointer: str) -> Any:
    """The sub-value at JSON Pointer ``pointer``; ``KeyError`` when there is none."""
    for raw in pointer.split("/")[1:] if pointer else []:
        key = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and (index := ascii_number(key, 0, len(value) - 1)) is not None:
            value = value[int(index)]
        else:
            raise KeyError(pointer)
    return value


def _type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array",
            dict: "object"}.get(type(value), type(value).__name__)


def _scalar(value: Any) -> tuple[str, bool]:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return (text[:TEXT_LIMIT], True) if len(text) > TEXT_LIMIT else (text, False)


def tree(value: Any, key: str = "", pointer: str = "", depth: int = 0) -> dict[str, Any]:
    """A node of the Tree view: key, type, text of a scalar, children of a container (bounded)."""
    node: dict[str, Any] = {"key": key, "type": _type(value), "pointer": pointer}
    if isinstance(value, dict | list):
        items = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
        node["size"] = len(items)
        if depth >= DEPTH_LIMIT:
            node["children"], node["more"] = [], len(items)
            return node
        node["children"] = [tree(v, str(k), pointer + pointer_part(k), depth + 1) for k, v in items[:CHILDREN_LIMIT]]
        node["more"] = max(0, len(items) - CHILDREN_LIMIT)
    else:
        node["text"], node["truncated"] = _scalar(value)
        node["length"] = len(value) if isinstance(value, str) else None
    return node


def table(value: Any) -> dict[str, Any] | None:
    """Columns and rows when ``value`` is a non-empty array of objects, else None."""
    if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
        return None
    columns: list[str] = []
    for row in value:
        columns += [k for k in row if k not in columns]
    columns = columns[:TABLE_COLUMNS]
    rows = [[_scalar(row.get(c, ""))[0][:200] for c in columns] for row in value[:TABLE_ROWS]]
    return {"columns": columns, "rows": rows, "more": max(0, len(value) - TABLE_ROWS)}


def meta(value: Any, extra: list[tuple[str, Any]] | None = None) -> list[tuple[str, str]]:
    """The Meta view: type, size, entries, plus what the caller knows (attempts, times)."""
    text = json.dumps(value, default=str)
    rows = [("Type", _type(value)), ("Size", f"{len(text.encode())} bytes as JSON")]
    if isinstance(value, dict | list):
        rows.append(("Entries", str(len(value))))
    if isinstance(value, str):
        rows.append(("Length", f"{len(value)} characters"))
    return rows + [(k, str(v)) for k, v in extra or [] if v is not None]


def view(value: Any, link: str, extra: list[tuple[str, Any]] | None = None) -> dict[str, Any] | None:
    """Everything the views of ``value`` need; None for an empty value (the page shows the empty text).

    Args:
        value: the data (untrusted: it is only ever shown as text).
        link: URL of the whole value as JSON; a sub-value adds ``&pointer=...``.
        extra: rows for the Meta view.
    """
    if value in (None, {}, [], ""):
        return None
    text = json.dumps(value, indent=2, default=str, ensure_ascii=False)
    return {"tree": tree(value), "json": text[:JSON_LIMIT], "json_cut": len(text) > JSON_LIMIT,
            "json_len": len(text), "table": table(value), "meta": meta(value, extra), "link": link}

"""The one judge of values that enter a run, and the readers' safe form of values recorded before it.

A value entering a run (its input, a signal's data, a step activity's output: HTTP answers, code results,
LLM answers, datastore rows) must be plain JSON: no NaN or +/-Infinity (JSON has none; Python's ``json``
writes them as bare words that other readers refuse), no integer longer than the templates compute with
(``_tpl_values.MAX_INT_BITS``, about 1,000 digits), no nesting past the documents' limit
(``_dsl_raw.MAX_JSON_DEPTH``, 160 levels), object keys that are strings. Integers past 2^53 are JSON and are
carried exactly (Python and Temporal's JSON keep every digit; a JavaScript reader may round them).
"""

from __future__ import annotations

import json
import math
from typing import Any

from flowtide.workflows.language.dsl.raw import MAX_JSON_DEPTH
from flowtide.workflows.language.values import MAX_INT_BITS, join_path

NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def json_problem(value: Any, where: str = "") -> str | None:
    """What makes ``value`` unfit to enter a run, with its JSON path (``where`` prefixes it); None if fit."""
    stack: list[tuple[str, Any, int]] = [(where, value, 0)]
    while stack:
        path, node, depth = stack.pop()
        at = path or "the value"
        t = type(node)
        if t is str or t is bool or node is None or isinstance(node, str):  # str subclasses: a header value
            continue
        if t is float or isinstance(node, float):
            if not math.isfinite(node):
                return f"{at}: {NON_FINITE[str(node)]} is not a JSON number"
        elif t is int or isinstance(node, int):
            if node.bit_length() > MAX_INT_BITS:
                return f"{at}: an integer with more than {MAX_INT_BITS * 3 // 10} digits"
        elif isinstance(node, dict | list | tuple):
            if depth >= MAX_JSON_DEPTH:
                return f"{at}: nests deeper than {MAX_JSON_DEPTH} levels"
            if isinstance(node, dict):
                for k, v in node.items():
                    if not isinstance(k, str):
                        return f"{at}: the key {str(k)[:40]!r} is not a string"
                    stack.append((join_path(path, k), v, depth + 1))
            else:
                stack.extend((join_path(path, i), v, depth + 1) for i, v in enumerate(node))
        else:
            return f"{at}: a {type(node).__name__} is not a JSON value"
    return None


def json_safe(value: Any) -> Any:
    """``value`` as valid JSON for a reader: NaN and +/-Infinity (runs recorded before the judge) become the
    strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``. Returns ``value`` itself when it needs nothing."""
    try:
        json.dumps(value, allow_nan=False, default=str)
        return value
    except ValueError:
        pass
    except RecursionError:
        return value

    def fix(node: Any, depth: int) -> Any:
        if isinstance(node, float) and not math.isfinite(node):
            return NON_FINITE[str(node)]
        if depth > 10 * MAX_JSON_DEPTH:
            return node
        if isinstance(node, dict):
            return {k: fix(v, depth + 1) for k, v in node.items()}
        if isinstance(node, list | tuple):
            return [fix(v, depth + 1) for v in node]
        return node
    return fix(value, 0)

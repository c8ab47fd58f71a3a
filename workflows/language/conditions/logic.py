"""The JsonLogic evaluator of conditions: every operator of jsonlogic.com, bounded in work per evaluation.

Two inputs are kept apart: ``scope`` renders ``{{ templates }}`` (the flow's data, always), while ``data``
is what ``var`` and ``missing`` read: the scope at the top, the current item inside ``map``, ``filter``,
``all``, ``some`` and ``none``, and ``{"current", "accumulator"}`` inside ``reduce``. Every evaluation
gets a budget of ``MAX_OPS`` operations, so a condition never holds the workflow task long enough to trip
Temporal's deadlock detector (2 s), whatever data it walks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flowtide.workflows.errors import TemplateError
from flowtide.workflows.language.conditions.expr import COMPARISONS
from flowtide.workflows.language.templates import render
from flowtide.workflows.language.values import (
    MISSING,
    bounded,
    did_you_mean,
    step_into,
    to_number,
    to_text,
    truthy,
)
from flowtide.workflows.language.work import current

MAX_DEPTH = 64
MAX_OPS = 100_000  # operations per evaluation (~0.1-0.3 s of CPU at worst)
Eval = Callable[..., Any]  # ev(node) in the current data, ev(node, data) in other data
OpFn = Callable[[list[Any], Eval, Any, bool], Any]
ARRAY_OPS = frozenset({"map", "filter", "all", "some", "none", "reduce"})  # their later args see other data


def _and(args: list[Any], ev: Eval, data: Any, strict: bool) -> Any:
    value = None
    for arg in args:
        value = ev(arg)
        if not truthy(value):
            return value
    return value


def _or(args: list[Any], ev: Eval, data: Any, strict: bool) -> Any:
    value = None
    for arg in args:
        value = ev(arg)
        if truthy(value):
            return value
    return value


def _if(args: list[Any], ev: Eval, data: Any, strict: bool) -> Any:
    for i in range(0, len(args) - 1, 2):
        if truthy(ev(args[i])):
            return ev(args[i + 1])
    return ev(args[-1]) if len(args) % 2 else None


def _compare(op: str) -> OpFn:
    test_fn = COMPARISONS[op]

    def apply(args: list[Any], ev: Eval, data: Any, strict: bool) -> Any:
        values = [ev(a) for a in args]
        return all(test_fn(values[i], values[i + 1]) for i in range(len(values) - 1))
    return apply


def lookup(path: Any, data: Any) -> Any:
    """``var``'s dotted path (or array index) in ``data``; ``MISSING`` when absent."""
    if path is None or path == "" or path == []:
        return data
    value = data
    for seg in to_text(path).split("."):
        value = step_into(value, seg)
        if value is MISSING:
            break
    return value


def _var(args: list[Any], ev: Eval, data: Any, strict: bool) -> Any:
    path = ev(args[0]) if args else None
    value = lookup(path, data)
    if value is MISSING:
        if len(args) > 1:
            return ev(args[1])
        if strict:
            raise TemplateError(f"condition: var '{to_text(path)}' is missing", path=to_text(path))
        return None
    return value


def _absent(keys: Any, data: Any) -> list[Any]:
    return [k for k in (keys if isinstance(keys, list) else [keys]) if lookup(k, data) in (MISSING, None, "")]


def _missing(args: list[Any], ev: Eval, data: Any, strict: bool) -> Any:
    keys = [ev(a) for a in args]
    return _absent(keys[0] if keys and isinstance(keys[0], list) else keys, data)


def _missing_some(args: list[Any], ev: Eval, data: Any, strict: bool) -> Any:
    need, keys = ev(args[0]), ev(args[1])
    missing = _absent(keys, data)
    found = (len(keys) if isinstance(keys, list) else 1) - len(missing)
    return [] if found >= to_number(need, "missing_some") else missing


def _numbers(op: str, args: list[Any], ev: Eval) -> list[int | float]:
    return [to_number(ev(a), f"'{op}'") for a in args]


def _arith(op: str) -> OpFn:
    def apply(args: list[Any], ev: Eval, data: Any, strict: bool) -> Any:
        nums = _numbers(op, args, ev)
        if op == "+":
            return sum(nums)
        if op == "*":
            out: int | float = 1
            for n in nums:
                out = bounded(out * n, f"'{op}'")  # a product of 1,000 big numbers would stall the task
            return out
        if op == "-":
            return -nums[0] if len(nums) == 1 else nums[0] - nums[1]
        if nums[1] == 0:
            raise TemplateError(f"condition: '{op}' by zero")
        return nums[0] / nums[1] if op == "/" else nums[0] % nums[1]
    return apply


def _merge(args: list[Any], ev: Eval, data: Any, strict: bool) -> Any:
    out: list[Any] = []
    for value in (ev(a) for a in args):
        out.extend(value if isinstance(value, list) else [value])
    return out


def _substr(args: list[Any], ev: Eval, data: Any, strict: bool) -> Any:
    text = to_text(ev(args[0]))
    start = int(to_number(ev(args[1]), "'substr' start"))
    begin = max(0, len(text) + start) if start < 0 else start
    if len(args) < 3:
        return text[begin:]
    length = int(to_number(ev(args[2]), "'substr' length"))
    return text[begin:len(text) + length] if length < 0 else text[begin:begin + length]


def _items(args: list[Any], ev: Eval) -> list[Any]:
    items = ev(args[0])
    return items if isinstance(items, list) else []  # JsonLogic: a non-array is an empty array


def _map(args: list[Any], ev: Eval, data: Any, strict: bool) -> Any:
    return [ev(args[1], item) for item in _items(args, ev)]


def _filter(args: list[Any], ev: Eval, data: Any, strict: bool) -> Any:
    return [item for item in _items(args, ev) if truthy(ev(args[1], item))]


def _all(args: list[Any], ev: Eval, data: Any, strict: bool) -> Any:
    items = _items(args, ev)
    return bool(items) and all(truthy(ev(args[1], item)) for item in items)  # all of nothing is false


def _some(args: list[Any], ev: Eval, data: Any, strict: bool) -> Any:
    return any(truthy(ev(args[1], item)) for item in _items(args, ev))


def _none(args: list[Any], ev: Eval, data: Any, strict: bool) -> Any:
    return not any(truthy(ev(args[1], item)) for item in _items(args, ev))


def _reduce(args: list[Any], ev: Eval, data: Any, strict: bool) -> Any:
    acc = ev(args[2]) if len(args) > 2 else None
    for item in _items(args, ev):
        acc = ev(args[1], {"current": item, "accumulator": acc})
    return acc


OPS: dict[str, tuple[OpFn, int, int]] = {
    "and": (_and, 1, 1000), "or": (_or, 1, 1000),
    "!": (lambda a, ev, d, st: not truthy(ev(a[0])), 1, 1),
    "!!": (lambda a, ev, d, st: truthy(ev(a[0])), 1, 1),
    "==": (_compare("=="), 2, 2), "!=": (_compare("!="), 2, 2),
    "===": (_compare("==="), 2, 2), "!==": (_compare("!=="), 2, 2),
    "<": (_compare("<"), 2, 3), "<=": (_compare("<="), 2, 3), ">": (_compare(">"), 2, 3), ">=": (_compare(">="), 2, 3),
    "in": (_compare("in"), 2, 2),
    "var": (_var, 0, 2), "missing": (_missing, 0, 1000), "missing_some": (_missing_some, 2, 2),
    "if": (_if, 1, 1000), "?:": (_if, 3, 3),
    "+": (_arith("+"), 0, 1000), "*": (_arith("*"), 1, 1000), "-": (_arith("-"), 1, 2),
    "/": (_arith("/"), 2, 2), "%": (_arith("%"), 2, 2),
    "cat": (lambda a, ev, d, st: "".join(to_text(ev(x)) for x in a), 0, 1000),
    "substr": (_substr, 2, 3),
    "min": (lambda a, ev, d, st: min(_numbers("min", a, ev), default=None), 0, 1000),
    "max": (lambda a, ev, d, st: max(_numbers("max", a, ev), default=None), 0, 1000),
    "merge": (_merge, 0, 1000),
    "map": (_map, 2, 2), "filter": (_filter, 2, 2), "reduce": (_reduce, 2, 3),
    "all": (_all, 2, 2), "some": (_some, 2, 2), "none": (_none, 2, 2),
    "log": (lambda a, ev, d, st: ev(a[0]), 1, 1),  # no I/O in workflows: passes its value through
}


def operation(node: dict[str, Any]) -> tuple[str, list[Any]]:
    """The operator and argument list of a one-key JsonLogic object (``TemplateError`` if unknown or mis-sized)."""
    op, raw = next(iter(node.items()))
    if op not in OPS:
        raise TemplateError(f"condition: unknown operator {str(op)[:40]!r}{did_you_mean(op, OPS)}")
    args = raw if isinstance(raw, list) else [raw]
    _, low, high = OPS[op]
    if not low <= len(args) <= high:
        want = str(low) if low == high else f"{low} to {high}" if high < 1000 else f"at least {low}"
        raise TemplateError(f"condition: '{op}' takes {want} argument(s), got {len(args)}")
    return op, args


class _Run:
    """One evaluation: the template scope, strictness and the remaining operation budget."""

    def __init__(self, scope: Any, strict: bool) -> None:
        self.scope, self.strict, self.left = scope, strict, MAX_OPS
        self.work = current()

    def eval(self, node: Any, data: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise TemplateError(f"condition nests deeper than {MAX_DEPTH} levels")
        self.left -= 1
        if not self.left & 255:  # the step's meter, in chunks (cheap per operation)
            self.work.add(256)
        if self.left < 0:
            raise TemplateError(f"condition does too much work (over {MAX_OPS} operations); "
                                "filter the data in a step before testing it")
        if isinstance(node, dict):
            if len(node) != 1:
                return render(node, self.scope, strict=self.strict)
            op, args = operation(node)

            def ev(arg: Any, inner: Any = MISSING) -> Any:
                return self.eval(arg, data if inner is MISSING else inner, depth + 1)
            return OPS[op][0](args, ev, data, self.strict)
        if isinstance(node, list):
            return [self.eval(x, data, depth + 1) for x in node]
        if isinstance(node, str):
            return render(node, self.scope, strict=self.strict)
        return node


def logic(node: Any, scope: Any, strict: bool) -> Any:
    """The value of JsonLogic ``node`` with ``scope`` as the data (and the template scope)."""
    return _Run(scope, strict).eval(node, scope, 0)

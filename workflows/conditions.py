"""Conditions (``skipCondition``, ``core.if``, graph-style ``condition.if``): JsonLogic objects or expression strings.

Two forms, both reading data through templates:

- JsonLogic: ``{"==": ["{{ fetch-data.$meta.success }}", false]}``. Every string operand is rendered as a
  template first (a string that is exactly one template keeps its native type). Operators: ``and``, ``or``,
  ``!``, ``!!``, ``==``, ``!=``, ``===``, ``!==``, ``<``, ``<=``, ``>``, ``>=`` (all four also with 3 arguments:
  ``{"<": [1, x, 10]}`` is "between", ``{">": [10, x, 1]}`` the same read downwards), ``in``, ``var``,
  ``missing``, ``missing_some``, ``if`` (``?:``), ``+``, ``-``, ``*``, ``/``, ``%``, ``cat``, ``min``, ``max``,
  ``merge``. An object with one key is an operation (an unknown key is
  an error); any other object is data.
- Expression strings: ``"{{validate-critical-data.output.valid}} == false"``,
  ``"{{ x }} > 3 and {{ y }} != 'a'"`` (see ``workflows._cond_expr``). Each ``{{ }}`` is bound as a value.
  A string that is only a template is tested for truthiness.

Values and the missing rule (one rule for both forms):

- A missing path renders as null (``strict=True``: ``TemplateError``). Nothing is ever "undefined".
- ``==`` (loose): null equals only null, so a missing value is *not* ``== false`` and *is* ``!= false``;
  booleans equal true/false, 1/0 and the strings "true"/"false"; a number equals its numeric string.
  ``===`` also requires the same kind of value.
- ``<``, ``<=``, ``>``, ``>=`` compare two numbers (numeric strings count) or two strings; any other pair
  (a null among them) is false.
- Truthiness (``!``, ``!!``, a bare template, ``and``/``or``, ``if``): null, false, 0, "" and [] are false;
  everything else, also ``{}`` and the string "false", is true. So ``{"!": "{{ missing }}"}`` is true.
- Arithmetic treats null as 0; a non-numeric operand or a division by zero is a ``TemplateError``.

Pure and deterministic; every failure is a ``TemplateError``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flowtide.workflows._cond_expr import COMPARISONS, compile_expression, test
from flowtide.workflows._tpl_values import (
    MISSING,
    bounded,
    did_you_mean,
    step_into,
    to_number,
    to_text,
    truthy,
)
from flowtide.workflows.errors import Problem, TemplateError
from flowtide.workflows.templates import check_syntax as template_syntax
from flowtide.workflows.templates import expression_roots, join_path, render
from flowtide.workflows.templates import references as template_references

MAX_DEPTH = 64
Eval = Callable[[Any], Any]
OpFn = Callable[[list[Any], Eval, Any, bool], Any]


def _and(args: list[Any], ev: Eval, scope: Any, strict: bool) -> Any:
    value = None
    for arg in args:
        value = ev(arg)
        if not truthy(value):
            return value
    return value


def _or(args: list[Any], ev: Eval, scope: Any, strict: bool) -> Any:
    value = None
    for arg in args:
        value = ev(arg)
        if truthy(value):
            return value
    return value


def _if(args: list[Any], ev: Eval, scope: Any, strict: bool) -> Any:
    for i in range(0, len(args) - 1, 2):
        if truthy(ev(args[i])):
            return ev(args[i + 1])
    return ev(args[-1]) if len(args) % 2 else None


def _compare(op: str) -> OpFn:
    test_fn = COMPARISONS[op]

    def apply(args: list[Any], ev: Eval, scope: Any, strict: bool) -> Any:
        values = [ev(a) for a in args]
        return all(test_fn(values[i], values[i + 1]) for i in range(len(values) - 1))
    return apply


def _lookup(path: Any, scope: Any) -> Any:
    if path is None or path == "":
        return scope
    value = scope
    for seg in to_text(path).split("."):
        value = step_into(value, seg)
        if value is MISSING:
            break
    return value


def _var(args: list[Any], ev: Eval, scope: Any, strict: bool) -> Any:
    path = ev(args[0]) if args else None
    value = _lookup(path, scope)
    if value is MISSING:
        if len(args) > 1:
            return ev(args[1])
        if strict:
            raise TemplateError(f"condition: var '{to_text(path)}' is missing", path=to_text(path))
        return None
    return value


def _missing(args: list[Any], ev: Eval, scope: Any, strict: bool) -> Any:
    keys = [ev(a) for a in args]
    if keys and isinstance(keys[0], list):
        keys = keys[0]
    return [k for k in keys if _lookup(k, scope) in (MISSING, None, "")]


def _missing_some(args: list[Any], ev: Eval, scope: Any, strict: bool) -> Any:
    need, keys = ev(args[0]), ev(args[1])
    missing = [k for k in (keys if isinstance(keys, list) else [keys]) if _lookup(k, scope) in (MISSING, None, "")]
    found = (len(keys) if isinstance(keys, list) else 1) - len(missing)
    return [] if found >= to_number(need, "missing_some") else missing


def _numbers(op: str, args: list[Any], ev: Eval) -> list[int | float]:
    return [to_number(ev(a), f"'{op}'") for a in args]


def _arith(op: str) -> OpFn:
    def apply(args: list[Any], ev: Eval, scope: Any, strict: bool) -> Any:
        nums = _numbers(op, args, ev)
        if op == "+":
            return sum(nums)
        if op == "*":
            out: int | float = 1
            for n in nums:
                out = bounded(out * n, f"'{op}'")
            return out
        if op == "-":
            return -nums[0] if len(nums) == 1 else nums[0] - nums[1]
        if nums[1] == 0:
            raise TemplateError(f"condition: '{op}' by zero")
        return nums[0] / nums[1] if op == "/" else nums[0] % nums[1]
    return apply


def _merge(args: list[Any], ev: Eval, scope: Any, strict: bool) -> Any:
    out: list[Any] = []
    for value in (ev(a) for a in args):
        out.extend(value if isinstance(value, list) else [value])
    return out


OPS: dict[str, tuple[OpFn, int, int]] = {
    "and": (_and, 1, 1000), "or": (_or, 1, 1000),
    "!": (lambda a, ev, s, st: not truthy(ev(a[0])), 1, 1),
    "!!": (lambda a, ev, s, st: truthy(ev(a[0])), 1, 1),
    "==": (_compare("=="), 2, 2), "!=": (_compare("!="), 2, 2),
    "===": (_compare("==="), 2, 2), "!==": (_compare("!=="), 2, 2),
    "<": (_compare("<"), 2, 3), "<=": (_compare("<="), 2, 3), ">": (_compare(">"), 2, 3), ">=": (_compare(">="), 2, 3),
    "in": (_compare("in"), 2, 2),
    "var": (_var, 0, 2), "missing": (_missing, 0, 1000), "missing_some": (_missing_some, 2, 2),
    "if": (_if, 1, 1000), "?:": (_if, 3, 3),
    "+": (_arith("+"), 0, 1000), "*": (_arith("*"), 1, 1000), "-": (_arith("-"), 1, 2),
    "/": (_arith("/"), 2, 2), "%": (_arith("%"), 2, 2),
    "cat": (lambda a, ev, s, st: "".join(to_text(ev(x)) for x in a), 0, 1000),
    "min": (lambda a, ev, s, st: min(_numbers("min", a, ev), default=None), 0, 1000),
    "max": (lambda a, ev, s, st: max(_numbers("max", a, ev), default=None), 0, 1000),
    "merge": (_merge, 0, 1000),
}


def _operation(node: dict[str, Any]) -> tuple[str, list[Any]]:
    op, raw = next(iter(node.items()))
    if op not in OPS:
        raise TemplateError(f"condition: unknown operator {str(op)[:40]!r}{did_you_mean(op, OPS)}")
    args = raw if isinstance(raw, list) else [raw]
    _, low, high = OPS[op]
    if not low <= len(args) <= high:
        want = str(low) if low == high else f"{low} to {high}" if high < 1000 else f"at least {low}"
        raise TemplateError(f"condition: '{op}' takes {want} argument(s), got {len(args)}")
    return op, args


def _logic(node: Any, scope: Any, strict: bool, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise TemplateError(f"condition nests deeper than {MAX_DEPTH} levels")
    if isinstance(node, dict):
        if len(node) != 1:
            return render(node, scope, strict=strict)
        op, args = _operation(node)
        return OPS[op][0](args, lambda a: _logic(a, scope, strict, depth + 1), scope, strict)
    if isinstance(node, list):
        return [_logic(x, scope, strict, depth + 1) for x in node]
    if isinstance(node, str):
        return render(node, scope, strict=strict)
    return node


def evaluate(condition: Any, scope: dict[str, Any], *, strict: bool = False) -> bool:
    """Evaluate a condition to a boolean.

    Args:
        condition: a JsonLogic object, an expression string, or a plain value (tested for truthiness).
        scope: the template scope (``initial``, step outputs, ``$errors``...).
        strict: a missing path raises ``TemplateError`` instead of being null.

    Returns:
        Whether the condition holds (see the module docstring for the rules).

    Raises:
        TemplateError: bad syntax, an unknown operator, a failing filter or operator, or (strict) a missing path.
    """
    try:
        if isinstance(condition, str):
            return test(compile_expression(condition), scope, strict)
        return truthy(_logic(condition, scope, strict, 0))
    except TemplateError:
        raise
    except RecursionError:
        raise TemplateError("condition nests too deeply") from None
    except Exception as exc:  # the contract is "only TemplateError"
        raise TemplateError(f"condition failed: {type(exc).__name__}: {str(exc)[:200]}") from None


def _check_logic(node: Any, path: str, depth: int, out: list[Problem]) -> None:
    if depth > MAX_DEPTH:
        out.append(Problem(path, f"condition nests deeper than {MAX_DEPTH} levels"))
        return
    if isinstance(node, dict) and len(node) == 1:
        try:
            op, args = _operation(node)
        except TemplateError as exc:
            out.append(Problem(path, str(exc)))
            return
        for i, arg in enumerate(args):
            where = join_path(join_path(path, op), i) if isinstance(node[op], list) else join_path(path, op)
            _check_logic(arg, where, depth + 1, out)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            _check_logic(item, join_path(path, i), depth + 1, out)
    else:
        out.extend(template_syntax(node, path))


def check_syntax(condition: Any, path: str = "") -> list[Problem]:
    """Every syntax problem of a condition (expression string or JsonLogic), each with its JSON path.

    Args:
        condition: the condition as written in the flow.
        path: its JSON path in the document (``steps[2].skipCondition``).
    """
    if isinstance(condition, str):
        try:
            compile_expression(condition)
        except TemplateError as exc:
            return [Problem(path, str(exc))]
        except RecursionError:
            return [Problem(path, "condition syntax error: nests too deeply")]
        return []
    problems: list[Problem] = []
    _check_logic(condition, path, 0, problems)
    return problems


def _node_roots(node: Any, out: set[str]) -> None:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, tuple):
            if item and item[0] in ("tpl", "text"):
                for expr in item[1].expressions():
                    out |= expression_roots(expr)
            else:
                stack.extend(item[1:])


def references(condition: Any) -> set[str]:
    """The root names a condition reads: template roots, and the first segment of literal ``var`` paths.

    Parts with syntax errors are skipped (``check_syntax`` reports them).
    """
    names: set[str] = set()
    if isinstance(condition, str):
        try:
            _node_roots(compile_expression(condition), names)
        except (TemplateError, RecursionError):
            pass
        return names
    stack: list[tuple[Any, int]] = [(condition, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            continue
        if isinstance(node, dict) and len(node) == 1 and "var" in node:
            path = node["var"][0] if isinstance(node["var"], list) and node["var"] else node["var"]
            if isinstance(path, str) and path and "{{" not in path:
                names.add(path.split(".")[0])
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
        elif isinstance(node, str):
            names |= template_references(node)
    return names

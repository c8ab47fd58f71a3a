"""Conditions (``skipCondition``, ``core.if``, graph-style ``condition.if``): JsonLogic objects or expression strings.

Two forms, both reading data through templates:

- JsonLogic: ``{"==": ["{{ fetch-data.$meta.success }}", false]}``. Every string operand is rendered as a
  template first (a string that is exactly one template keeps its native type). Operators: ``and``, ``or``,
  ``!``, ``!!``, ``==``, ``!=``, ``===``, ``!==``, ``<``, ``<=``, ``>``, ``>=`` (all four also with 3 arguments:
  ``{"<": [1, x, 10]}`` is "between", ``{">": [10, x, 1]}`` the same read downwards), ``in``, ``var``,
  ``missing``, ``missing_some``, ``if`` (``?:``), ``+``, ``-``, ``*``, ``/``, ``%``, ``cat``, ``substr``,
  ``min``, ``max``, ``merge``, ``map``, ``filter``, ``reduce``, ``all``, ``some``, ``none``, ``log``
  (``conditions.logic``; inside the array operators ``var`` reads the item). An object with one key is
  an operation (an unknown key is an error); any other object is data. One evaluation may do at most
  ``MAX_OPS`` operations.
- Expression strings: ``"{{validate-critical-data.output.valid}} == false"``,
  ``"{{ x }} > 3 and {{ y }} != 'a'"`` (see ``workflows.language.conditions.expr``). Each ``{{ }}`` is bound as a value.
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

from typing import Any

from flowtide.workflows.errors import Problem, TemplateError
from flowtide.workflows.language.conditions.expr import compile_expression, test
from flowtide.workflows.language.conditions.logic import ARRAY_OPS, MAX_DEPTH, MAX_OPS, OPS, logic, operation
from flowtide.workflows.language.templates import check_syntax as template_syntax
from flowtide.workflows.language.templates import expression_roots, join_path
from flowtide.workflows.language.templates import references as template_references
from flowtide.workflows.language.values import truthy
from flowtide.workflows.language.work import metered

__all__ = ["MAX_DEPTH", "MAX_OPS", "OPS", "check_syntax", "evaluate", "references"]

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
        with metered():
            if isinstance(condition, str):
                return test(compile_expression(condition), scope, strict)
            return truthy(logic(condition, scope, strict))
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
            op, args = operation(node)
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
    stack: list[tuple[Any, int, bool]] = [(condition, 0, True)]
    while stack:
        node, depth, top = stack.pop()
        if depth > MAX_DEPTH:
            continue
        if top and isinstance(node, dict) and len(node) == 1 and "var" in node:
            path = node["var"][0] if isinstance(node["var"], list) and node["var"] else node["var"]
            if isinstance(path, str) and path and "{{" not in path:
                names.add(path.split(".")[0])
        if isinstance(node, dict) and len(node) == 1 and next(iter(node)) in ARRAY_OPS \
                and isinstance(node[next(iter(node))], list):
            args = node[next(iter(node))]
            # inside map/filter/all/some/none/reduce, var reads the item, not the flow's data
            stack.extend((v, depth + 1, top and i in (0, 2)) for i, v in enumerate(args))
            continue
        if isinstance(node, dict):
            stack.extend((v, depth + 1, top) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1, top) for v in node)
        elif isinstance(node, str):
            names |= template_references(node)
    return names

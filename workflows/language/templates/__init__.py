"""Templates: ``{{ path | filter: arg }}`` inside any string of a step's input, rendered against JSON data.

Rules (the contract of docs/flow-language.md):

- A string that is exactly one template keeps the native type (``"{{ initial.items }}"`` is a list);
  mixed text renders to a string (null -> "", true/false, lists and objects as compact JSON).
- Paths walk JSON data only: object keys and list indexes (negative ones count from the end), plus
  ``size`` / ``first`` / ``last`` on lists. No Python attribute is ever looked up.
- A missing path is null; with ``strict=True`` it raises ``TemplateError`` naming the path (a path whose
  first filter is ``default`` is allowed to be missing even then).
- Data is never evaluated twice: a value that contains ``{{ }}`` is returned as it is.
- ``{{ secrets.NAME }}`` is never evaluated here: activities resolve secrets at the moment of use. Inside a
  run, the scope carries a per-run nonce (``SECRET_NONCE``) and the reference renders as
  ``{{ secrets.NAME@<nonce> }}``; activities resolve only references with their run's nonce. Data cannot know
  the nonce, so a ``{{ secrets.NAME }}`` arriving in data (a run input, a response body) is never resolved:
  only the flow document can name a secret. Without a nonce the reference is left as written.
- Cost is bounded: a template string is at most 64 KiB, an expression has at most 32 filters, compiled
  templates live in a bounded LRU cache, and every expression, filter call (with the items it walks) and
  character built is charged to the work meter (``work``), whose caps fail the step with
  ``WORK_BUDGET_EXCEEDED`` (a ``LimitError``). Every failure is a ``TemplateError``.

Pure and deterministic: the Temporal workflow sandbox imports this module.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from flowtide.workflows.errors import LimitError, Problem, TemplateError
from flowtide.workflows.language.templates.filters import WALK_OPS
from flowtide.workflows.language.templates.parse import MAX_TEMPLATE_CHARS as MAX_TEMPLATE_CHARS
from flowtide.workflows.language.templates.parse import Expr, Literal, Path, find_close, split_template
from flowtide.workflows.language.values import MISSING, step_into, to_text
from flowtide.workflows.language.values import iter_strings as iter_strings
from flowtide.workflows.language.values import join_path as join_path
from flowtide.workflows.language.work import current, metered

CACHE_SIZE = 8192
SECRET_NONCE = "\x00secretNonce"  # scope key; no template path can name it, so data cannot read it
MAX_MARKER_DEPTH = 170  # documents nest at most 160 levels (``_dsl_raw.MAX_JSON_DEPTH``): markers sit above


Evaluator = Callable[[Any, bool], Any]


class Compiled:
    """A parsed template string: literal text and expressions, or exactly one expression (``single``).

    ``render(scope, strict)`` gives the rendered value: native for a single template, else a string.
    """

    __slots__ = ("parts", "render", "single", "source")

    def __init__(self, source: str, parts: list[str | Expr]) -> None:
        self.source = source
        self.parts = tuple(parts)
        self.single = parts[0] if len(parts) == 1 and isinstance(parts[0], Expr) else None
        self.render: Evaluator = self._plan()

    def _plan(self) -> Evaluator:
        single = self.single
        if single is not None:
            return _secret(single) if single.secret else _evaluator(single)
        fns = tuple(p if isinstance(p, str) else _secret(p) if p.secret else _evaluator(p) for p in self.parts)

        def mixed(scope: Any, strict: bool) -> str:
            out = []
            work = current()
            for p in fns:
                if type(p) is str:
                    out.append(p)
                else:
                    value = p(scope, strict)  # type: ignore[operator]
                    text = value if type(value) is str else to_text(value)
                    work.add(1, len(text))  # before the join: a cap stops a doubling before it is built
                    out.append(text)
            return "".join(out)
        return mixed

    def expressions(self) -> list[Expr]:
        """The parsed expressions, in order."""
        return [p for p in self.parts if isinstance(p, Expr)]


def _secret(expr: Expr) -> Evaluator:
    """A secret reference: the run's marker for ``{{ secrets.NAME }}`` (see the module docstring)."""
    head = expr.head
    if expr.filters or not isinstance(head, Path) or len(head.segments) != 1 or not isinstance(head.segments[0], str):
        return lambda scope, strict: expr.source  # not a plain reference: never resolved, shown as written
    marker = "{{ secrets." + head.segments[0] + "@%s }}"

    def render(scope: Any, strict: bool) -> Any:
        nonce = scope.get(SECRET_NONCE) if type(scope) is dict else None
        return expr.source if nonce is None else marker % nonce
    return render


def hide_secret_nonce(value: Any, nonce: str | None) -> Any:
    """``value`` with the run's secret markers shown as written (``{{ secrets.NAME }}``), for the run record.

    The nonce must not reach anyone who can read a run record and then send data into the run (a signal):
    knowing it, they could write a marker. Returns ``value`` itself when it holds no marker.
    """
    if nonce is None:
        return value
    tail = f"@{nonce} }}}}"
    if type(value) is dict or type(value) is list:
        try:  # the common case, at C speed: no marker anywhere (the walk below costs ~5x more)
            text = json.dumps(value, ensure_ascii=False, check_circular=False, default=str)
        except (RecursionError, ValueError, TypeError):
            text = tail
        current().spend(chars=len(text))  # this task's work: it yields sooner (``work``)
        if tail not in text:
            return value
    walked = [0]

    def walk(node: Any, depth: int) -> Any:
        if type(node) is str:
            return node.replace(tail, " }}") if tail in node else node
        if depth > MAX_MARKER_DEPTH:  # deeper than any document: data, which holds no marker of this run
            return node
        if type(node) is dict or type(node) is list:
            walked[0] += len(node)
        if type(node) is dict:
            out = {k: walk(v, depth + 1) for k, v in node.items()}
            return node if all(out[k] is node[k] for k in node) else out
        if type(node) is list:
            items = [walk(v, depth + 1) for v in node]
            return node if all(a is b for a, b in zip(items, node, strict=True)) else items
        return node

    out = walk(value, 0)
    current().spend(walked[0] // 4)  # the walk is work of this task: it yields sooner (``work``)
    return out


@lru_cache(maxsize=CACHE_SIZE)
def compile_template(text: str) -> Compiled:
    """Parse ``text`` once (cached); raise ``TemplateError`` on a syntax error.

    Args:
        text: any string; one without ``{{`` compiles to plain text.

    Returns:
        The compiled template.
    """
    return Compiled(text, split_template(text))


def _getter(path: Path) -> Callable[[Any], Any]:
    """A function reading ``path`` from a scope; ``MISSING`` when it leads nowhere."""
    root, segs = path.root, path.segments
    if any(isinstance(s, Path) for s in segs):
        index_getters = {i: _getter(s) for i, s in enumerate(segs) if isinstance(s, Path)}

        def get_computed(scope: Any) -> Any:
            value = dict.get(scope, root, MISSING) if isinstance(scope, dict) else MISSING
            for i, seg in enumerate(segs):
                key = index_getters[i](scope) if i in index_getters else seg
                value = MISSING if key is MISSING else step_into(value, key)
            return value
        return get_computed

    def get(scope: Any) -> Any:
        value = scope.get(root, MISSING) if type(scope) is dict else (
            dict.get(scope, root, MISSING) if isinstance(scope, dict) else MISSING)
        for seg in segs:
            value = value.get(seg, MISSING) if type(value) is dict and type(seg) is str else step_into(value, seg)
        return value
    return get


def _missing(expr: Expr, path: Path) -> TemplateError:
    return TemplateError(f"template {expr.source!r}: '{path.text}' is missing", path=path.text)


def _operand_fn(node: Path | Literal, expr: Expr) -> Evaluator:
    if isinstance(node, Literal):
        constant = node.value
        return lambda scope, strict: constant
    if any(isinstance(s, Path) for s in node.segments):
        get = _getter(node)

        def read_computed(scope: Any, strict: bool) -> Any:
            value = get(scope)
            if value is MISSING:
                if strict:
                    raise _missing(expr, node)
                return None
            return value
        return read_computed
    root, segs = node.root, node.segments

    def read(scope: Any, strict: bool) -> Any:  # the hot path: _getter inlined
        value = scope.get(root, MISSING) if type(scope) is dict else (
            dict.get(scope, root, MISSING) if isinstance(scope, dict) else MISSING)
        for seg in segs:
            value = value.get(seg, MISSING) if type(value) is dict and type(seg) is str else step_into(value, seg)
        if value is MISSING:
            if strict:
                raise _missing(expr, node)
            return None
        return value
    return read


def _evaluator(expr: Expr) -> Evaluator:
    """Compile one expression into a function of ``(scope, strict)``."""
    head = expr.head
    if isinstance(head, Path) and expr.filters and expr.filters[0].name == "default":
        get = _getter(head)  # "| default" accepts a missing path even in strict mode

        def tolerant(scope: Any, strict: bool) -> Any:
            value = get(scope)
            return None if value is MISSING else value
        head_fn: Evaluator = tolerant
    else:
        head_fn = _operand_fn(head, expr)
    if not expr.filters:
        return head_fn
    calls = [(c.name, c.fn, [_operand_fn(a, expr) for a in c.args], WALK_OPS.get(c.name, 0.0))
             for c in expr.filters]

    def run(scope: Any, strict: bool) -> Any:
        value = head_fn(scope, strict)
        work = current()
        for name, fn, arg_fns, walk in calls:
            work.add(1 + int(len(value) * walk) if walk and (type(value) is list or type(value) is dict) else 1)
            try:
                value = fn(value, *[a(scope, strict) for a in arg_fns]) if arg_fns else fn(value)
                if type(value) is str:
                    work.add(0, len(value))
            except LimitError:
                raise
            except TemplateError as exc:
                raise TemplateError(f"template {expr.source!r}: {exc}") from None
            except Exception as exc:  # a filter met data it cannot handle: still only a TemplateError
                raise TemplateError(f"template {expr.source!r}: filter '{name}' failed: "
                                    f"{type(exc).__name__}: {str(exc)[:200]}") from None
        return value
    return run


def evaluate_expr(expr: Expr, scope: Any, strict: bool = False) -> Any:
    """Evaluate one parsed expression against ``scope`` (see the module rules)."""
    return _evaluator(expr)(scope, strict)


def _render_dict(value: dict[Any, Any], scope: Any, strict: bool) -> dict[Any, Any]:
    out = {}
    for k, v in value.items():
        t = type(v)
        if t is str:
            out[k] = compile_template(v).render(scope, strict) if "{{" in v else v
        elif t is dict:
            out[k] = _render_dict(v, scope, strict)
        elif t is int or t is bool or v is None or t is float:
            out[k] = v
        else:
            out[k] = _render(v, scope, strict)
    return out


def _render(value: Any, scope: Any, strict: bool) -> Any:
    t = type(value)
    if t is str:
        return compile_template(value).render(scope, strict) if "{{" in value else value
    if t is dict:
        return _render_dict(value, scope, strict)
    if t is list:
        return [_render(v, scope, strict) for v in value]
    if isinstance(value, str):
        return _render(str(value), scope, strict)
    if isinstance(value, dict):
        return _render_dict(value, scope, strict)
    if isinstance(value, list | tuple):
        return [_render(v, scope, strict) for v in value]
    return value


def render(value: Any, scope: dict[str, Any], *, strict: bool = False) -> Any:
    """Render every template inside ``value`` (strings, and strings inside dicts and lists).

    Args:
        value: a string, or JSON data holding strings; other values are returned unchanged.
        scope: the names templates can read (``initial``, step ids, ``$errors``, ...): plain JSON data.
        strict: a missing path raises ``TemplateError`` instead of rendering null.

    Returns:
        The rendered copy of ``value``.

    Raises:
        TemplateError: bad syntax, a filter that cannot apply, or (strict) a missing path.
    """
    try:
        with metered():
            return _render(value, scope, strict)
    except TemplateError:
        raise
    except RecursionError:
        raise TemplateError("the value nests too deeply to render") from None
    except Exception as exc:  # defensive: the contract is "only TemplateError"
        raise TemplateError(f"cannot render: {type(exc).__name__}: {str(exc)[:200]}") from None


def find_templates(value: Any, path: str = "") -> list[tuple[str, str]]:
    """Every ``{{ }}`` inside ``value``: ``(json_path, expression_text)`` pairs, in document order.

    Syntax is not checked here (see ``check_syntax``); an unclosed ``{{`` ends the search in its string.
    """
    found: list[tuple[str, str]] = []
    for where, text in iter_strings(value, path):
        pos = text.find("{{")
        while pos >= 0:
            end = find_close(text, pos + 2)
            if end < 0:
                break
            found.append((where, text[pos + 2:end].strip()))
            pos = text.find("{{", end + 2)
    return found


def _roots(node: Path | Literal, out: set[str]) -> None:
    if isinstance(node, Path):
        out.add(node.root)
        for seg in node.segments:
            if isinstance(seg, Path):
                _roots(seg, out)


def expression_roots(expr: Expr) -> set[str]:
    """The root names one expression reads (its path and its filters' path arguments)."""
    out: set[str] = set()
    _roots(expr.head, out)
    for call in expr.filters:
        for arg in call.args:
            _roots(arg, out)
    return out


def references(value: Any) -> set[str]:
    """The root names (``initial``, step ids, ``$errors``...) that templates inside ``value`` read.

    Templates with syntax errors are skipped (``check_syntax`` reports them).
    """
    names: set[str] = set()
    for _, text in iter_strings(value):
        if "{{" in text:
            try:
                compiled = compile_template(text)
            except TemplateError:
                continue
            for expr in compiled.expressions():
                names |= expression_roots(expr)
    return names


def check_syntax(value: Any, path: str = "") -> list[Problem]:
    """A ``Problem`` for every string inside ``value`` whose templates do not parse.

    Args:
        value: JSON data (a step input, a condition operand...).
        path: the JSON path of ``value`` in its document, used as the prefix of each problem's path.
    """
    problems: list[Problem] = []
    for where, text in iter_strings(value, path):
        if "{{" not in text:
            continue
        try:
            compile_template(text)
        except TemplateError as exc:
            problems.append(Problem(where, f"template syntax error: {exc}"))
    return problems

"""Expression-string conditions: ``"{{ x }} > 3 and {{ y }} != 'a'"``, tokenized and parsed, never ``eval``'d.

Grammar::

    condition  := or
    or         := and (("or" | "||") and)*
    and        := not (("and" | "&&") not)*
    not        := ("not" | "!") not | comparison
    comparison := operand (OP operand)?        OP: == != === !== < <= > >= in "not in" contains
    operand    := TEMPLATE | STRING | NUMBER | true | false | null | "(" or ")"

A ``{{ }}`` is one operand whose *value* is bound at evaluation time; its text is never spliced into the
condition, so data that contains ``or 1==1`` or quotes cannot change the expression. Quoted strings may
contain templates too (their rendered text is the string).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from flowtide.workflows.errors import TemplateError
from flowtide.workflows.language.templates import Compiled, compile_template
from flowtide.workflows.language.templates.parse import find_close
from flowtide.workflows.language.values import (
    compare,
    contains,
    loose_equal,
    parse_number,
    strict_equal,
    to_text,
    truthy,
)

MAX_CONDITION_CHARS = 65_536
MAX_NESTING = 64
Node = tuple[Any, ...]


def _cmp(test: Callable[[int], bool]) -> Callable[[Any, Any], bool]:
    def apply(a: Any, b: Any) -> bool:
        order = compare(a, b)
        return order is not None and test(order)
    return apply


COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "==": loose_equal,
    "!=": lambda a, b: not loose_equal(a, b),
    "===": strict_equal,
    "!==": lambda a, b: not strict_equal(a, b),
    "<": _cmp(lambda o: o < 0),
    "<=": _cmp(lambda o: o <= 0),
    ">": _cmp(lambda o: o > 0),
    ">=": _cmp(lambda o: o >= 0),
    "in": lambda a, b: contains(b, a),
    "not in": lambda a, b: not contains(b, a),
    "contains": contains,
}
_WORDS = {"and", "or", "not", "in", "contains", "true", "false", "null", "none", "nil"}
_CONSTANTS = {"true": True, "false": False, "null": None, "none": None, "nil": None}
_OPERATORS = ("===", "!==", "==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "(", ")")


def _fail(text: str, message: str) -> TemplateError:
    shown = text if len(text) <= 80 else text[:77] + "..."
    return TemplateError(f"condition {shown!r}: {message}")


def _string(text: str, i: int) -> tuple[str, int]:
    quote, j, out = text[i], i + 1, []
    while j < len(text):
        c = text[j]
        if c == "\\" and j + 1 < len(text):
            out.append({"n": "\n", "t": "\t"}.get(text[j + 1], text[j + 1]))
            j += 2
        elif c == quote:
            return "".join(out), j + 1
        else:
            out.append(c)
            j += 1
    raise _fail(text, "unterminated string")


def _template_token(text: str, i: int) -> tuple[Node, int]:
    end = find_close(text, i + 2)
    if end < 0:
        raise _fail(text, f"unclosed '{{{{' at position {i + 1}")
    return ("tpl", compile_template(text[i:end + 2])), end + 2


def _word_or_number(text: str, i: int) -> tuple[Node, int]:
    j = i
    while j < len(text) and (text[j].isalnum() or text[j] in "._+-") and text[j].isascii():
        j += 1
    raw = text[i:j]
    number = parse_number(raw)
    if number is not None:
        return ("const", number), j
    word = raw.lower()
    if word in _CONSTANTS:
        return ("const", _CONSTANTS[word]), j
    if word in _WORDS:
        return ("word", word), j
    raise _fail(text, f"unexpected {raw or text[i]!r} at position {i + 1} (quote text: 'like this'; "
                      "read data with {{ path }})")


def tokenize(text: str) -> list[Node]:
    """Split an expression string into tokens: ``("tpl", Compiled)``, ``("text", Compiled)``,
    ``("const", value)``, ``("word", w)``, ``("op", o)``."""
    tokens: list[Node] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
        elif text.startswith("{{", i):
            token, i = _template_token(text, i)
            tokens.append(token)
        elif c in ("'", '"'):
            value, i = _string(text, i)
            tokens.append(("text", compile_template(value)) if "{{" in value else ("const", value))
        elif op := next((o for o in _OPERATORS if text.startswith(o, i)), None):
            tokens.append(("op", op))
            i += len(op)
        else:
            token, i = _word_or_number(text, i)
            tokens.append(token)
    return tokens


class _Parser:
    def __init__(self, text: str, tokens: list[Node]) -> None:
        self.text, self.tokens, self.i, self.depth = text, tokens, 0, 0

    def peek(self) -> Node | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, *accept: str) -> str | None:
        tok = self.peek()
        if tok is not None and tok[0] in ("word", "op") and tok[1] in accept:
            self.i += 1
            return str(tok[1])
        return None

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise _fail(self.text, f"nests deeper than {MAX_NESTING} levels")

    def parse(self) -> Node:
        if not self.tokens:
            raise _fail(self.text, "empty condition")
        node = self.or_()
        if self.peek() is not None:
            raise _fail(self.text, f"unexpected {self.peek()[1]!r} after a complete condition")  # type: ignore[index]
        return node

    def or_(self) -> Node:
        node = self.and_()
        while self.take("or", "||"):
            node = ("or", node, self.and_())
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self.take("and", "&&"):
            node = ("and", node, self.not_())
        return node

    def not_(self) -> Node:
        if self.take("not", "!"):
            self.nest()
            node = ("not", self.not_())
            self.depth -= 1
            return node
        return self.comparison()

    def comparison(self) -> Node:
        left = self.operand()
        op = self.take(*COMPARISONS)
        if op is None and self.take("not"):
            if not self.take("in"):
                raise _fail(self.text, "'not' after a value must be followed by 'in'")
            op = "not in"
        if op is None:
            return left
        return ("cmp", op, left, self.operand())

    def operand(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise _fail(self.text, "ends where a value was expected")
        if tok[0] in ("tpl", "text", "const"):
            self.i += 1
            return tok
        if self.take("("):
            self.nest()
            node = self.or_()
            if not self.take(")"):
                raise _fail(self.text, "missing ')'")
            self.depth -= 1
            return node
        raise _fail(self.text, f"expected a value, got {tok[1]!r}")


@lru_cache(maxsize=2048)
def compile_expression(text: str) -> Node:
    """Parse an expression string once (cached); raise ``TemplateError`` on bad syntax."""
    if len(text) > MAX_CONDITION_CHARS:
        raise _fail(text, f"longer than {MAX_CONDITION_CHARS} characters")
    return _Parser(text, tokenize(text)).parse()


def _value(node: Node, scope: Any, strict: bool) -> Any:
    kind = node[0]
    if kind == "const":
        return node[1]
    if kind == "tpl":
        compiled: Compiled = node[1]
        return compiled.render(scope, strict)
    if kind == "text":
        rendered = node[1].render(scope, strict)
        return rendered if isinstance(rendered, str) else to_text(rendered)
    return test(node, scope, strict)


def test(node: Node, scope: Any, strict: bool) -> bool:
    """Evaluate a parsed expression to a boolean (``and``/``or`` short-circuit)."""
    kind = node[0]
    if kind == "not":
        return not test(node[1], scope, strict)
    if kind == "and":
        return test(node[1], scope, strict) and test(node[2], scope, strict)
    if kind == "or":
        return test(node[1], scope, strict) or test(node[2], scope, strict)
    if kind == "cmp":
        return COMPARISONS[node[1]](_value(node[2], scope, strict), _value(node[3], scope, strict))
    return truthy(_value(node, scope, strict))

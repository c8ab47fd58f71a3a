"""Template syntax: find ``{{ ... }}`` in a string and parse the expression inside into a small tree.

Grammar (no operators, so ``fetch-customer.status`` is a path and never a subtraction)::

    expression := operand ("|" filter)*
    filter     := NAME (":" operand ("," operand)*)?
    operand    := STRING | NUMBER | true | false | null | nil | path
    path       := NAME ("." SEGMENT | "[" (INTEGER | STRING | path) "]")*

NAME starts with a letter, ``_`` or ``$`` and goes on with letters, digits, ``_``, ``$`` and ``-``;
SEGMENT may also start with a digit. Strings use single or double quotes with backslash escapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowtide.workflows.errors import TemplateError
from flowtide.workflows.language.templates.filters import FILTERS, FilterFn
from flowtide.workflows.language.values import did_you_mean, parse_number

MAX_TEMPLATE_CHARS = 65_536
MAX_FILTERS = 32
MAX_SEGMENTS = 64
MAX_INDEX_NESTING = 4
KEYWORDS: dict[str, Any] = {"true": True, "false": False, "null": None, "nil": None}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}


@dataclass(frozen=True, slots=True)
class Path:
    """A path into the scope: ``root`` then keys / indexes (a nested ``Path`` is a computed index)."""

    root: str
    segments: tuple[str | int | Path, ...]
    text: str


@dataclass(frozen=True, slots=True)
class Literal:
    """A quoted string, a number, true/false or null."""

    value: Any


@dataclass(frozen=True, slots=True)
class FilterCall:
    """One ``| name: args`` of an expression."""

    name: str
    fn: FilterFn
    args: tuple[Path | Literal, ...]


@dataclass(frozen=True, slots=True)
class Expr:
    """A parsed ``{{ ... }}``; ``secret`` marks ``{{ secrets.NAME }}``, which is never evaluated here."""

    head: Path | Literal
    filters: tuple[FilterCall, ...]
    source: str
    secret: bool


def _is_name_start(c: str) -> bool:
    return c.isalpha() or c in "_$"


def _is_name_char(c: str) -> bool:
    return c.isalnum() or c in "_$-"


class _Parser:
    """A recursive-descent parser over one expression (the text between ``{{`` and ``}}``)."""

    def __init__(self, text: str, source: str) -> None:
        self.s = text
        self.i = 0
        self.source = source

    def fail(self, message: str) -> TemplateError:
        return TemplateError(f"template {self.source!r}: {message}")

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def skip_ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i].isspace():
            self.i += 1

    def expression(self) -> Expr:
        self.skip_ws()
        if not self.peek():
            raise self.fail("empty expression")
        head = self.operand()
        filters: list[FilterCall] = []
        self.skip_ws()
        while self.peek() == "|":
            self.i += 1
            filters.append(self.filter_call())
            if len(filters) > MAX_FILTERS:
                raise self.fail(f"more than {MAX_FILTERS} filters")
            self.skip_ws()
        if self.peek():
            raise self.fail(f"unexpected {self.peek()!r} at position {self.i + 1} (templates have no operators; "
                            "use filters such as plus, minus, times)")
        secret = isinstance(head, Path) and head.root == "secrets"
        return Expr(head, tuple(filters), self.source, secret)

    def filter_call(self) -> FilterCall:
        self.skip_ws()
        start = self.i
        while self.i < len(self.s) and (self.s[self.i].isalnum() or self.s[self.i] == "_"):
            self.i += 1
        name = self.s[start:self.i]
        if not name:
            raise self.fail("expected a filter name after '|'")
        if name not in FILTERS:
            raise self.fail(f"unknown filter '{name[:60]}'{did_you_mean(name, FILTERS)}")
        args: list[Path | Literal] = []
        self.skip_ws()
        if self.peek() == ":":
            self.i += 1
            args.append(self.operand())
            self.skip_ws()
            while self.peek() == ",":
                self.i += 1
                args.append(self.operand())
                self.skip_ws()
        fn, low, high = FILTERS[name]
        if not low <= len(args) <= high:
            want = str(low) if low == high else f"{low} to {high}"
            raise self.fail(f"filter '{name}' takes {want} argument(s), got {len(args)}")
        return FilterCall(name, fn, tuple(args))

    def operand(self, depth: int = 0) -> Path | Literal:
        self.skip_ws()
        c = self.peek()
        if c in ("'", '"'):
            return Literal(self.string())
        if c.isascii() and (c.isdigit() or (c in "-+." and self.s[self.i + 1:self.i + 2].isdigit())):
            return Literal(self.number())
        if c and _is_name_start(c):
            start = self.i
            name = self.name()
            if name in KEYWORDS and self.peek() not in (".", "["):
                return Literal(KEYWORDS[name])
            return self.path(name, start, depth)
        raise self.fail(f"expected a name, a number or a quoted string at position {self.i + 1}"
                        + (f", got {c!r}" if c else ""))

    def name(self) -> str:
        start = self.i
        while self.i < len(self.s) and _is_name_char(self.s[self.i]):
            self.i += 1
        return self.s[start:self.i]

    def path(self, root: str, start: int, depth: int) -> Path:
        segments: list[str | int | Path] = []
        while self.peek() in (".", "[") and self.peek():
            if len(segments) >= MAX_SEGMENTS:
                raise self.fail(f"path longer than {MAX_SEGMENTS} segments")
            if self.peek() == ".":
                self.i += 1
                seg = self.name()
                if not seg:
                    raise self.fail(f"expected a key after '.' at position {self.i + 1}")
                segments.append(seg)
            else:
                self.i += 1
                segments.append(self.index(depth))
        return Path(root, tuple(segments), self.s[start:self.i])

    def index(self, depth: int) -> str | int | Path:
        self.skip_ws()
        c = self.peek()
        if c in ("'", '"'):
            key: str | int | Path = self.string()
        elif c.isascii() and (c.isdigit() or c == "-"):
            value = self.number()
            if not isinstance(value, int):
                raise self.fail("a list index must be an integer")
            key = value
        elif c and _is_name_start(c):
            if depth >= MAX_INDEX_NESTING:
                raise self.fail("indexes nest too deeply")
            start = self.i
            key = self.path(self.name(), start, depth + 1)
        else:
            raise self.fail(f"expected an index, a quoted key or a path inside [ ] at position {self.i + 1}")
        self.skip_ws()
        if self.peek() != "]":
            raise self.fail(f"expected ']' at position {self.i + 1}")
        self.i += 1
        return key

    def string(self) -> str:
        quote = self.s[self.i]
        self.i += 1
        out: list[str] = []
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == "\\" and self.i + 1 < len(self.s):
                nxt = self.s[self.i + 1]
                out.append(_ESCAPES.get(nxt, nxt))
                self.i += 2
                continue
            if c == quote:
                self.i += 1
                return "".join(out)
            out.append(c)
            self.i += 1
        raise self.fail("unterminated string")

    def number(self) -> int | float:
        start = self.i
        if self.peek() in "+-":
            self.i += 1
        while self.i < len(self.s) and (self.s[self.i].isascii() and (self.s[self.i].isalnum() or
                                                                       self.s[self.i] in ".+-")):
            if self.s[self.i] in "+-" and self.s[self.i - 1] not in "eE":
                break
            self.i += 1
        text = self.s[start:self.i]
        value = parse_number(text)
        if value is None:
            raise self.fail(f"bad number {text[:40]!r}")
        return value


def parse_expression(inner: str, source: str) -> Expr:
    """Parse the text between ``{{`` and ``}}``; ``source`` is the whole ``{{ ... }}`` for messages."""
    return _Parser(inner, source).expression()


def find_close(text: str, start: int) -> int:
    """Index of the ``}}`` closing a template whose inner text starts at ``start`` (quotes respected), or -1."""
    i, n = start, len(text)
    while i < n - 1:
        c = text[i]
        if c in ("'", '"'):
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                return text.find("}}", start)  # unbalanced quote: let the parser report it
            i = j + 1
            continue
        if c == "}" and text[i + 1] == "}":
            return i
        i += 1
    return -1


def split_template(text: str) -> list[str | Expr]:
    """Split ``text`` into literal text and parsed expressions; raise ``TemplateError`` on bad syntax."""
    if len(text) > MAX_TEMPLATE_CHARS:
        raise TemplateError(f"template text is longer than {MAX_TEMPLATE_CHARS} characters")
    parts: list[str | Expr] = []
    pos = 0
    while True:
        start = text.find("{{", pos)
        if start < 0:
            if pos < len(text):
                parts.append(text[pos:])
            return parts
        end = find_close(text, start + 2)
        if end < 0:
            raise TemplateError(f"unclosed '{{{{' at position {start + 1}: {text[start:start + 40]!r}")
        if start > pos:
            parts.append(text[pos:start])
        parts.append(parse_expression(text[start + 2:end], text[start:end + 2]))
        pos = end + 2

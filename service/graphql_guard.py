"""What one GraphQL request may ask for, checked before it runs: its shape, size, depth, aliases and cost.

Strawberry's ``QueryDepthLimiter`` and ``MaxAliasesLimiter`` are not used: the first skips introspection
fields (whose nesting multiplies the answer), both walk every fragment spread again (a document whose
fragments each spread the next one twice takes 2**n steps) and their errors carry no code. The walk here
looks at each fragment once, and every refusal is an ``ApiError`` answered in the service's error shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLSyntaxError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
)

from flowtide.service.errors import ApiError
from flowtide.service.limits import (
    GRAPHQL_MAX_ALIASES,
    GRAPHQL_MAX_COMMENTS,
    GRAPHQL_MAX_COST,
    GRAPHQL_MAX_DEPTH,
    GRAPHQL_MAX_OPERATIONS,
    GRAPHQL_MAX_QUERY_CHARS,
    GRAPHQL_MAX_TOKENS,
)

SHAPE = 'body: {"query": string, "variables"?: object, "operationName"?: string, "extensions"?: object}'


@dataclass(frozen=True)
class Request:
    """A typed GraphQL request body."""

    query: str
    variables: dict[str, Any] | None
    operation_name: str | None


def request_of(body: dict[str, Any]) -> Request:
    """The typed request of a JSON object body.

    Raises:
        ApiError: ``BAD_REQUEST`` naming the member of the wrong type.
    """
    query, variables, name = body.get("query"), body.get("variables"), body.get("operationName")
    if not isinstance(query, str) or not query.strip():
        raise ApiError("BAD_REQUEST", f"query: a non-empty string is required; {SHAPE}")
    if variables is not None and not isinstance(variables, dict):
        raise ApiError("BAD_REQUEST", f"variables: must be an object; {SHAPE}")
    if name is not None and not isinstance(name, str):
        raise ApiError("BAD_REQUEST", f"operationName: must be a string; {SHAPE}")
    if body.get("extensions") is not None and not isinstance(body.get("extensions"), dict):
        raise ApiError("BAD_REQUEST", f"extensions: must be an object; {SHAPE}")
    return Request(query, variables, name or None)


def _over(what: str, value: int, limit: int) -> ApiError:
    return ApiError("INPUT_INVALID", f"the query has {value} {what}; at most {limit} are accepted",
                    problems=[{"path": "query", "message": f"{what}: {value} > {limit}"}])


def cost_of(req: Request) -> int:
    """How many calls ``req`` makes: the top-level fields of the operation that runs (introspection is free).

    Raises:
        ApiError: ``INPUT_INVALID`` past a limit of ``limits`` (``BAD_REQUEST`` for a syntax error or an
            operation name the document does not have).
    """
    if len(req.query) > GRAPHQL_MAX_QUERY_CHARS:
        raise _over("characters", len(req.query), GRAPHQL_MAX_QUERY_CHARS)
    doc = _parsed(req.query)
    ops = [d for d in doc.definitions if isinstance(d, OperationDefinitionNode)]
    if len(ops) > GRAPHQL_MAX_OPERATIONS:
        raise _over("operations", len(ops), GRAPHQL_MAX_OPERATIONS)
    chosen = [o for o in ops if req.operation_name is None or (o.name and o.name.value == req.operation_name)]
    if req.operation_name is not None and not chosen:
        raise ApiError("BAD_REQUEST", f"operationName: the document has no operation '{req.operation_name[:80]}'")
    if req.operation_name is None and len(ops) > 1:
        raise ApiError("BAD_REQUEST", "operationName: required when the document has several operations")
    walk = _Walk({d.name.value: d for d in doc.definitions if isinstance(d, FragmentDefinitionNode)})
    depth, aliases = 0, 0
    for op in ops:
        d, a = walk.measure(op.selection_set)
        depth, aliases = max(depth, d), aliases + a
    if depth > GRAPHQL_MAX_DEPTH:
        raise _over("levels of nesting (too deep)", depth, GRAPHQL_MAX_DEPTH)
    if aliases > GRAPHQL_MAX_ALIASES:
        raise _over("aliases", aliases, GRAPHQL_MAX_ALIASES)
    cost = max((len(walk.top_keys(op.selection_set, set())) for op in chosen), default=0)
    if cost > GRAPHQL_MAX_COST:
        raise _over("top-level fields (calls)", cost, GRAPHQL_MAX_COST)
    return cost


def _parsed(query: str) -> DocumentNode:
    try:
        return parse(query, max_lexical_tokens=GRAPHQL_MAX_TOKENS, max_comments=GRAPHQL_MAX_COMMENTS)
    except GraphQLSyntaxError as err:
        if "Parsing aborted" in err.message:  # graphql-core's own limits: tokens, comments, nesting
            raise ApiError("INPUT_INVALID", f"the query is past a limit: {err.message}",
                           problems=[{"path": "query", "message": err.message}]) from None
        raise ApiError("BAD_REQUEST", f"GraphQL syntax error: {err.message}"[:500]) from None


class _Walk:
    """Depth and alias count of selection sets, each fragment measured once (memoised, cycles count 0)."""

    def __init__(self, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments
        self.memo: dict[str, tuple[int, int]] = {}

    def measure(self, sel: SelectionSetNode | None) -> tuple[int, int]:
        """``(depth, aliases)`` of ``sel``: nested fields and aliased fields, through every spread."""
        depth, aliases = 0, 0
        for s in sel.selections if sel else ():
            if isinstance(s, FieldNode):
                d, a = self.measure(s.selection_set)
                depth, aliases = max(depth, d + 1), aliases + a + (1 if s.alias else 0)
            elif isinstance(s, InlineFragmentNode):
                d, a = self.measure(s.selection_set)
                depth, aliases = max(depth, d), aliases + a
            elif isinstance(s, FragmentSpreadNode):
                d, a = self._fragment(s.name.value)
                depth, aliases = max(depth, d), aliases + a
        return depth, aliases

    def _fragment(self, name: str) -> tuple[int, int]:
        if name not in self.memo:
            self.memo[name] = (0, 0)  # a cycle (refused by validation later) counts nothing
            frag = self.fragments.get(name)
            self.memo[name] = self.measure(frag.selection_set) if frag else (0, 0)
        return self.memo[name]

    def top_keys(self, sel: SelectionSetNode | None, seen: set[str]) -> set[str]:
        """The response keys of ``sel``'s fields (fields with one key merge into one call), not ``__`` ones."""
        keys: set[str] = set()
        for s in sel.selections if sel else ():
            if isinstance(s, FieldNode) and not s.name.value.startswith("__"):
                keys.add((s.alias or s.name).value)
            elif isinstance(s, InlineFragmentNode):
                keys |= self.top_keys(s.selection_set, seen)
            elif isinstance(s, FragmentSpreadNode) and s.name.value not in seen:
                seen.add(s.name.value)
                frag = self.fragments.get(s.name.value)
                keys |= self.top_keys(frag.selection_set if frag else None, seen)
        return keys

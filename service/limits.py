"""The service's limits on what one request may ask for, in one place (GraphQL first)."""

from __future__ import annotations

# GraphQL (POST /graphql): a document past any of these is refused with 400 INPUT_INVALID before it runs
GRAPHQL_MAX_QUERY_CHARS = 20_000  # the `query` text, in characters (the body's own limit is FLOWTIDE_API_MAX_BODY)
GRAPHQL_MAX_TOKENS = 2_000  # lexical tokens of the document (parsing stops there)
GRAPHQL_MAX_COMMENTS = 200  # comment lines of the document
GRAPHQL_MAX_OPERATIONS = 10  # operations in one document (one of them runs)
GRAPHQL_MAX_DEPTH = 15  # nested fields, introspection included (the standard introspection query needs 15)
GRAPHQL_MAX_ALIASES = 20  # aliased fields, counted through every fragment spread
# top-level fields of the operation that runs: each is one call against the key's rate limit, like its REST call
GRAPHQL_MAX_COST = 20

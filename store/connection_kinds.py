"""The kinds of connection and their fields, declared once (no imports: the CLI builds its flags from this
module to print ``--help`` without loading the database or the cipher)."""

from __future__ import annotations

# kind -> (required fields, optional fields); secret fields are sealed, the others are shown by `show`
FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "bearer": (("token",), ()),
    "basic": (("username", "password"), ()),
    "api-key": (("header", "value"), ()),
    "oauth2": (("tokenUrl", "clientId", "clientSecret"), ("refreshToken", "scopes")),
}
AUTH_SCHEMES = tuple(FIELDS)
SECRET_FIELDS = frozenset({"token", "password", "value", "clientSecret", "refreshToken", "accessToken"})
LIST_FIELDS = frozenset({"scopes"})  # given as a repeated flag (`--scope a --scope b`)


def all_fields() -> list[str]:
    """Every field a credential may set, in declaration order."""
    seen: dict[str, None] = {}
    for required, optional in FIELDS.values():
        seen.update(dict.fromkeys((*required, *optional)))
    return list(seen)

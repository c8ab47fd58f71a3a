"""The kinds of connection and their fields, declared once (no imports: the CLI builds its flags from this
module to print ``--help`` without loading the database or the cipher)."""

from __future__ import annotations

# kind -> (required fields, optional fields); secret fields are sealed, the others are shown by `show`
# Every kind may list its origins: where steps may apply it (required for the operator's connections that
# projects use; see store/connection_checks.py and activities/connection/apply.py).
FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "bearer": (("token",), ("origins",)),
    "basic": (("username", "password"), ("origins",)),
    "api-key": (("header", "value"), ("origins",)),
    "oauth2": (("tokenUrl", "clientId", "clientSecret"), ("refreshToken", "scopes", "origins")),
}
AUTH_SCHEMES = tuple(FIELDS)
SECRET_FIELDS = frozenset({"token", "password", "value", "clientSecret", "refreshToken", "accessToken"})
LIST_FIELDS = frozenset({"scopes", "origins"})  # given as a repeated flag (`--scope a --scope b`)


def all_fields() -> list[str]:
    """Every field a credential may set, in declaration order."""
    seen: dict[str, None] = {}
    for required, optional in FIELDS.values():
        seen.update(dict.fromkeys((*required, *optional)))
    return list(seen)

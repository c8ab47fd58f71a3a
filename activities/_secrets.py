"""Secrets at the moment of use: the flow document's ``{{ secrets.NAME@<nonce> }}`` resolved from the worker's
``FLOWTIDE_SECRET_NAME`` variables, and every secret value redacted (``***``) from what a step returns."""

from __future__ import annotations

import os
import re
from typing import Any

from flowtide.store.secretbox import ENV as SEALING_KEY_ENV
from flowtide.workflows.errors import StepFailure

SECRET_PREFIX = "FLOWTIDE_SECRET_"
_SECRET_RE = re.compile(r"\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
REDACTED = "***"
# Flowtide's own settings that share the prefix: never a flow's secret (FLOWTIDE_SECRET_KEY seals every
# connection of every project; a flow reading it would open them all).
RESERVED = frozenset({SEALING_KEY_ENV.removeprefix(SECRET_PREFIX)})


def secret_value(name: str) -> str | None:
    """The worker's ``FLOWTIDE_SECRET_<name>``, or None when unset; a reserved name is refused."""
    if name in RESERVED:
        raise StepFailure("VALIDATION_ERROR", f"secret name '{name}' is reserved: {SECRET_PREFIX}{name} is "
                          "Flowtide's own setting, not a flow's secret", retryable=False)
    return os.environ.get(SECRET_PREFIX + name)


def resolve_secrets(value: Any, found: dict[str, str], nonce: str | None = None) -> Any:
    """Replace the flow document's secret references with ``FLOWTIDE_SECRET_NAME``; AUTH_MISSING when unset.

    With the run's ``nonce`` (every task the interpreter makes has one) only ``{{ secrets.NAME@<nonce> }}``
    is resolved: a reference that arrived in data is left as it is. Without one (a task scheduled by an
    older worker, or a direct call) the plain ``{{ secrets.NAME }}`` form is resolved, as before.
    """
    pattern = _SECRET_RE if nonce is None else re.compile(
        r"\{\{ secrets\.([A-Za-z_][A-Za-z0-9_]*)@" + re.escape(nonce) + r" \}\}")

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        secret = secret_value(name)
        if secret is None:
            raise StepFailure("AUTH_MISSING", f"secret '{name}' is not configured "
                              f"(set {SECRET_PREFIX}{name} on the worker)", retryable=False)
        found[name] = secret
        return secret

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return pattern.sub(sub, node) if "secrets." in node else node
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(value)


def redact(value: Any, secrets: list[str]) -> Any:
    """Replace every secret value inside strings (and dict keys) by ``***``."""
    if not secrets:
        return value
    if isinstance(value, str):
        for s in secrets:
            if s and s in value:
                value = value.replace(s, REDACTED)
        return value
    if isinstance(value, dict):
        return {redact(k, secrets): redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v, secrets) for v in value]
    return value

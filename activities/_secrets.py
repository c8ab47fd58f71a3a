"""Secrets at the moment of use: the flow document's ``{{ secrets.NAME@<nonce> }}`` resolved from the worker's
``FLOWTIDE_SECRET_NAME`` variables, and every secret value redacted (``***``) from what a step returns.

The worker's secrets are the operator's. A run outside any project (the CLI, the Python API) may use every
one; a run of a project (started through the service) only those the operator shares with every project by
naming them in ``FLOWTIDE_SHARED_SECRETS`` (``*``: all). Otherwise any project's admin could deploy a flow that
sends the worker's ``FLOWTIDE_SECRET_ORDERS_DB`` to a host of its choosing; a project keeps credentials of its
own in connections (``store.connections``), which no other project can name."""

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
SHARED_ENV = "FLOWTIDE_SHARED_SECRETS"  # names (comma or space separated, ``*`` for all) every project may use


def shared_with_projects(name: str) -> bool:
    """Whether the operator shares the worker's secret ``name`` with the runs of every project."""
    shared = set(os.environ.get(SHARED_ENV, "").replace(",", " ").split())
    return "*" in shared or name in shared


def secret_value(name: str, project: str | None = None) -> str | None:
    """The worker's ``FLOWTIDE_SECRET_<name>``, or None when unset or, for a run of ``project``, not shared
    with projects (the same answer either way: a project learns nothing of the secrets it may not use).
    A reserved name is refused."""
    if name in RESERVED:
        raise StepFailure("VALIDATION_ERROR", f"secret name '{name}' is reserved: {SECRET_PREFIX}{name} is "
                          "Flowtide's own setting, not a flow's secret", retryable=False)
    if project and not shared_with_projects(name):
        return None
    return os.environ.get(SECRET_PREFIX + name)


def unset_reason(name: str, project: str | None, *alternatives: str) -> str:
    """Why ``secret_value`` gave nothing, in the words of whoever can mend it (``alternatives``: other
    variables that would also do, such as a code step's ``FLOWTIDE_VAR_<name>``)."""
    if project and not shared_with_projects(name):
        return (f"is not shared with projects (the operator sets {SECRET_PREFIX}{name} on the worker and names "
                f"it in {SHARED_ENV}; a project's own credentials belong in its connections)")
    return f"is not configured (set {' or '.join((SECRET_PREFIX + name, *alternatives))} on the worker)"


def resolve_secrets(value: Any, found: dict[str, str], nonce: str | None = None,
                    project: str | None = None) -> Any:
    """Replace the flow document's secret references with ``FLOWTIDE_SECRET_NAME``; AUTH_MISSING when unset.

    With the run's ``nonce`` (every task the interpreter makes has one) only ``{{ secrets.NAME@<nonce> }}``
    is resolved: a reference that arrived in data is left as it is. Without one (a task scheduled by an
    older worker, or a direct call) the plain ``{{ secrets.NAME }}`` form is resolved, as before. A run of
    ``project`` resolves only the secrets shared with projects.
    """
    pattern = _SECRET_RE if nonce is None else re.compile(
        r"\{\{ secrets\.([A-Za-z_][A-Za-z0-9_]*)@" + re.escape(nonce) + r" \}\}")

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        secret = secret_value(name, project)
        if secret is None:
            raise StepFailure("AUTH_MISSING", f"secret '{name}' {unset_reason(name, project)}", retryable=False)
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

"""The step kinds: canonical names, aliases, families, and whether each is pure or an activity."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    """One step kind."""

    name: str
    family: str
    pure: bool
    side_effects: bool = False  # for `rerun --dry-run`: repeating it changes the outside world
    default_timeout_s: float = 30.0
    blocks: tuple[str, ...] = ()  # input keys that hold nested step lists


KINDS: dict[str, Kind] = {k.name: k for k in [
    Kind("core.http", "HTTP", pure=False),
    Kind("core.code", "Code", pure=False, side_effects=True),
    Kind("core.if", "Core", pure=True, blocks=("then", "else")),
    Kind("core.for-each", "Core", pure=True, blocks=("steps",)),
    Kind("core.set-variable", "Core", pure=True),
    Kind("core.return", "Core", pure=True),
    Kind("core.delay", "Core", pure=True),
    Kind("core.wait-for-signal", "Core", pure=True),
    Kind("core.validate", "Core", pure=True),
    Kind("core.sub-flow", "Core", pure=True, side_effects=True),
    Kind("email.send", "Email", pure=False, side_effects=True),
    Kind("file.read", "File", pure=False),
    Kind("file.write", "File", pure=False, side_effects=True),
    Kind("datastore.query", "Data Store", pure=False, side_effects=True),
    Kind("llm.chat", "AI / LLM", pure=False, default_timeout_s=120.0),
    Kind("data.pick", "Core", pure=True),
    Kind("data.merge", "Core", pure=True),
    Kind("crypto.hash", "Core", pure=True),
    Kind("crypto.hmac", "Core", pure=True),
    Kind("datetime.format", "Core", pure=True),
    Kind("datetime.now", "Core", pure=True),
]}

CONNECTION_KINDS = frozenset({"core.http", "datastore.query", "email.send", "llm.chat"})  # `connection: NAME`

ALIASES: dict[str, str] = {
    "http.request": "core.http",
    "http::request": "core.http",
    "core::http": "core.http",
    "logic::loop": "core.for-each",
    "logic::if": "core.if",
    "logic::delay": "core.delay",
    "logic::wait": "core.wait-for-signal",
    "logic::return": "core.return",
    "template::validate": "core.validate",
    "code::python": "core.code",
    "code::javascript": "core.code",
    "variable::set": "core.set-variable",
    "email::send": "email.send",
    "file::read": "file.read",
    "file::write": "file.write",
    "datastore::query": "datastore.query",
    "llm::chat": "llm.chat",
    "flow::sub-flow": "core.sub-flow",
}


def canonical_kind(name: str) -> str | None:
    """The canonical kind for ``name`` (an alias, ``ns::name`` or ``ns.name`` spelling), or None."""
    if name in KINDS:
        return name
    if name in ALIASES:
        return ALIASES[name]
    dotted = name.replace("::", ".")
    if dotted in KINDS:
        return dotted
    return None


def activity_kinds() -> list[str]:
    """Kinds that run as Temporal activities (one activity type each)."""
    return sorted(k.name for k in KINDS.values() if not k.pure)

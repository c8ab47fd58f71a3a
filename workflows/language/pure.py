"""Pure step kinds that run inside the workflow: no I/O, deterministic, cheap.

Each function takes the rendered input (and for time-based kinds, the workflow's ``now``) and returns the
step output, or raises ``StepFailure``. Control-flow kinds (if, for-each, delay, signals, sub-flow, return)
live in the interpreter because they await.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from datetime import datetime
from typing import Any

import jsonschema

from flowtide.workflows.errors import StepFailure
from flowtide.workflows.language._schemas import SchemaWorkExceeded, remote_refs, safe_validator, schema_errors
from flowtide.workflows.language.templates import render
from flowtide.workflows.language.values import parse_instant

PureFn = Callable[[dict[str, Any], datetime], Any]


def set_variable(inp: dict[str, Any], now: datetime) -> Any:
    """``core.set-variable``: every input key becomes ``vars.<key>``; the output is the same mapping."""
    return dict(inp)


def validate(inp: dict[str, Any], now: datetime) -> Any:
    """``core.validate``: check ``data`` against the JSON Schema ``schema``; output ``{valid, errors}``."""
    schema = inp.get("schema")
    if not isinstance(schema, dict):
        raise StepFailure("VALIDATION_ERROR", "core.validate needs a JSON Schema object in 'schema'",
                          retryable=False)
    remote = remote_refs(schema)
    if remote:  # refused before anything is resolved: a workflow task never fetches
        where, ref = remote[0]
        raise StepFailure("VALIDATION_ERROR", f"the schema's reference {ref[:200]!r} at "
                          f"schema{''.join(f'[{p!r}]' for p in where)} points outside the document: only references "
                          "inside it ('#/$defs/...') are resolved", retryable=False)
    try:
        validator = safe_validator(schema)
    except jsonschema.SchemaError as exc:
        raise StepFailure("VALIDATION_ERROR", f"the schema is invalid: {exc.message}", retryable=False) from None
    try:
        found = sorted(schema_errors(validator, inp.get("data")), key=lambda e: list(map(str, e.path)))
    except SchemaWorkExceeded as exc:
        raise StepFailure("WORK_BUDGET_EXCEEDED", str(exc), retryable=False) from None
    except RecursionError:
        raise StepFailure("VALIDATION_ERROR", "the data or the schema nests too deeply", retryable=False) from None
    except Exception as exc:  # a $ref that points nowhere (no network, by design), an unknown format, ...
        raise StepFailure("VALIDATION_ERROR", f"the schema cannot be applied: {type(exc).__name__}: "
                          f"{str(exc)[:300]}", retryable=False) from None
    problems = [{"path": "$" + "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path),
                 "message": e.message} for e in found]
    out = {"valid": not problems, "errors": problems[:100]}
    if problems and inp.get("failOnInvalid"):
        raise StepFailure("VALIDATION_ERROR", f"data does not match the schema: {problems[0]['path']}: "
                          f"{problems[0]['message']}", type="operational", output=out, retryable=False)
    return out


def data_pick(inp: dict[str, Any], now: datetime) -> Any:
    """``data.pick``: ``{"data": ..., "paths": {"name": "a.b[0]"}}`` -> ``{"name": value}``."""
    data = inp.get("data")
    paths = inp.get("paths") or {}
    if not isinstance(paths, dict):
        raise StepFailure("VALIDATION_ERROR", "data.pick 'paths' must map names to paths", retryable=False)
    scope = {"data": data}
    return {name: render("{{ data" + ("" if str(p).startswith("[") else ".") + f"{p} }}}}", scope)
            for name, p in paths.items()}


def data_merge(inp: dict[str, Any], now: datetime) -> Any:
    """``data.merge``: shallow-merge the objects in ``objects`` (later keys win)."""
    out: dict[str, Any] = {}
    for obj in inp.get("objects") or []:
        if isinstance(obj, dict):
            out.update(obj)
    return out


# fixed-length digests only: shake_128/shake_256 need a length and hmac refuses them
HASH_ALGORITHMS = tuple(sorted(a for a in hashlib.algorithms_guaranteed if not a.startswith("shake")))


def _digest_name(inp: dict[str, Any]) -> str:
    name = str(inp.get("algorithm", "sha256")).lower().replace("-", "")
    if name not in HASH_ALGORITHMS:
        raise StepFailure("VALIDATION_ERROR", f"unknown hash algorithm '{name[:40]}' (use one of "
                          f"{', '.join(HASH_ALGORITHMS)})", retryable=False)
    return name


def _bytes(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else repr(value).encode()


def crypto_hash(inp: dict[str, Any], now: datetime) -> Any:
    """``crypto.hash``: ``{algorithm, data, encoding: hex|base64}`` -> ``{digest}``."""
    d = hashlib.new(_digest_name(inp), _bytes(inp.get("data", ""))).digest()
    return {"digest": base64.b64encode(d).decode() if inp.get("encoding") == "base64" else d.hex()}


def crypto_hmac(inp: dict[str, Any], now: datetime) -> Any:
    """``crypto.hmac``: ``{algorithm, key, data}``; the key may not be a secret (secrets stay in activities)."""
    key = inp.get("key", "")
    if isinstance(key, str) and "secrets." in key:
        raise StepFailure("VALIDATION_ERROR", "crypto.hmac runs inside the workflow and cannot use secrets; "
                          "compute the HMAC in a core.code step with env: [NAME]", retryable=False)
    d = hmac.new(_bytes(key), _bytes(inp.get("data", "")), _digest_name(inp)).digest()
    return {"digest": base64.b64encode(d).decode() if inp.get("encoding") == "base64" else d.hex()}


def _parse_time(value: Any) -> datetime:
    dt = parse_instant(value)
    if dt is None:
        raise StepFailure("VALIDATION_ERROR", f"not an ISO date or epoch seconds: {value!r}"[:300], retryable=False)
    return dt


def datetime_format(inp: dict[str, Any], now: datetime) -> Any:
    """``datetime.format``: ``{value, format}`` (strftime) -> ``{formatted, iso, epoch}``."""
    dt = _parse_time(inp["value"]) if inp.get("value") is not None else now
    fmt = str(inp.get("format", "%Y-%m-%dT%H:%M:%S%z"))
    return {"formatted": dt.strftime(fmt), "iso": dt.isoformat(), "epoch": dt.timestamp()}


def datetime_now(inp: dict[str, Any], now: datetime) -> Any:
    """``datetime.now``: the workflow's deterministic clock."""
    return {"iso": now.isoformat(), "epoch": now.timestamp()}


PURE: dict[str, PureFn] = {
    "core.set-variable": set_variable,
    "core.validate": validate,
    "data.pick": data_pick,
    "data.merge": data_merge,
    "crypto.hash": crypto_hash,
    "crypto.hmac": crypto_hmac,
    "datetime.format": datetime_format,
    "datetime.now": datetime_now,
}

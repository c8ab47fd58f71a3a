"""The ``core.code`` step: a user's Python (or JavaScript) script, run outside the worker process.

Input keys (spec 4.1): ``script``, ``language`` (``python`` default, ``javascript`` with the optional ``js``
extra), ``env`` (names resolved from ``FLOWTIDE_SECRET_<NAME>`` or ``FLOWTIDE_VAR_<NAME>`` on the worker;
secrets are redacted from everything the step returns), ``allowNetwork`` (default false), ``memoryMb``
(default 256); every other key is a parameter (``params``). The interpreter adds the run's context under
``$context``: ``{"input", "steps", "errors", "vars", "item", "index"}``.

What the script's outcome becomes:

- a returned JSON value: the output; a dict with ``$warning: {code, message}``: a warning, the other keys
  are the output; a dict with ``$error: {code, message}``: an operational error (not retried unless the
  step is in ``custom`` mode and the code is not in its denylist);
- an exception: ``CODE_EXCEPTION`` (or the code it names), a syntax error: ``CODE_SYNTAX_ERROR``, a value
  that is not JSON: ``CODE_RESULT_INVALID``; its limits: ``SUBPROCESS_TIMEOUT``,
  ``SUBPROCESS_OUT_OF_MEMORY``; a process that dies without a result: ``SUBPROCESS_CRASHED``.

The sandbox itself is ``activities._sandbox`` (parent) and ``activities._sandbox_runner`` (child).
"""

from __future__ import annotations

import os
import re
from typing import Any

import structlog

from flowtide.activities._boundary import CONSOLE_MAX_BYTES, CONSOLE_MAX_LINES, step_activity
from flowtide.activities._sandbox import Limits, SandboxOutcome, js_runtime, run_in_sandbox
from flowtide.activities._secrets import secret_value, unset_reason
from flowtide.activities._step import DEFAULT_OUTPUT_LIMIT, StepContext, StepResult
from flowtide.guards.netpolicy import METADATA_ADDRESSES, parse_allow
from flowtide.workflows.errors import StepFailure
from flowtide.workflows.kinds import KINDS

log = structlog.get_logger("flowtide.code")

VAR_PREFIX = "FLOWTIDE_VAR_"
RESERVED = KINDS["core.code"].inputs.names | {"$context"}  # every other key is a parameter
LANGUAGES = {"python": "python", "py": "python", "python3": "python",
             "javascript": "javascript", "js": "javascript"}
DEFAULT_MEMORY_MB = 256
MIN_MEMORY_MB = 32
MAX_MEMORY_MB = int(os.environ.get("FLOWTIDE_CODE_MAX_MEMORY_MB", "4096"))
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_warned_layers: set[str] = set()


def map_code_exception(exc: BaseException) -> StepFailure | None:
    """Map what can go wrong on the worker's side of a code step to a code.

    The script's own failures never get here: they come back from the sandbox as an outcome.

    Args:
        exc: an exception raised while preparing or supervising the script.

    Returns:
        The failure, or None to let the boundary report ``UNKNOWN_ERROR``.
    """
    if isinstance(exc, TypeError | ValueError | RecursionError):
        return StepFailure("SUBPROCESS_INVALID_INPUT", f"the script's input cannot be passed as JSON: {exc}",
                           retryable=False)
    if isinstance(exc, MemoryError):
        return StepFailure("SUBPROCESS_OUT_OF_MEMORY", "the worker ran out of memory preparing the script")
    if isinstance(exc, OSError):
        # EAGAIN/EMFILE/ENOMEM when spawning are the worker's momentary state: worth another attempt
        return StepFailure("SUBPROCESS_CRASHED", f"the script process could not be started: {exc}")
    return None


def _resolve_env(names: Any, ctx: StepContext) -> dict[str, str]:
    """The ``env`` dict of the script; secret values are recorded in ``ctx.secrets`` for redaction."""
    if names is None:
        return {}
    if not isinstance(names, list) or not all(isinstance(n, str) and _NAME.fullmatch(n) for n in names):
        raise StepFailure("VALIDATION_ERROR", "env must be a list of names like API_KEY", retryable=False)
    env: dict[str, str] = {}
    for name in names:
        secret = secret_value(name, ctx.project)
        value = secret if secret is not None else os.environ.get(VAR_PREFIX + name)
        if value is None:
            raise StepFailure("AUTH_MISSING", f"env name '{name}' {unset_reason(name, ctx.project, VAR_PREFIX + name)}",
                              retryable=False)
        if secret is not None:
            ctx.secrets[name] = secret  # the boundary redacts every value recorded here
        env[name] = value
    return env


def _limits(inp: dict[str, Any], ctx: StepContext) -> Limits:
    """The sandbox limits from the step input, the step timeout and the worker's settings."""
    memory = inp.get("memoryMb", DEFAULT_MEMORY_MB)
    if isinstance(memory, bool) or not isinstance(memory, int | float) or not (
            MIN_MEMORY_MB <= memory <= MAX_MEMORY_MB):
        raise StepFailure("VALIDATION_ERROR", f"memoryMb must be a number from {MIN_MEMORY_MB} to "
                          f"{MAX_MEMORY_MB}", retryable=False)
    network = inp.get("allowNetwork", False)
    if not isinstance(network, bool):
        raise StepFailure("VALIDATION_ERROR", "allowNetwork must be true or false", retryable=False)
    allow = parse_allow(os.environ.get("FLOWTIDE_HTTP_ALLOW", ""))
    return Limits(timeout_s=ctx.timeout_s, memory_mb=int(memory), allow_network=network,
                  output_bytes=int(ctx.limits.get("outputBytes") or DEFAULT_OUTPUT_LIMIT),
                  console_lines=CONSOLE_MAX_LINES, console_chars=CONSOLE_MAX_BYTES,
                  allow_nets=tuple(str(n) for n in allow.networks),
                  metadata=tuple(sorted(str(a) for a in METADATA_ADDRESSES)))


def _user_error(spec: Any, severity: str) -> StepFailure:
    """A ``$error`` / ``$warning`` value as a failure; a bare string is the message."""
    if isinstance(spec, dict):
        code, message = spec.get("code"), spec.get("message")
    else:
        code, message = None, spec
    code = str(code)[:200] if code else ("CODE_ERROR" if severity == "error" else "CODE_WARNING")
    message = str(message) if message is not None else f"the script reported {code}"
    return StepFailure(code, message, type="operational", severity=severity,  # type: ignore[arg-type]
                       user_code=True)


def script_result(value: Any) -> StepResult:
    """A returned value as a result: ``$warning`` becomes warnings, ``$error`` is raised."""
    if not isinstance(value, dict) or not ({"$error", "$warning"} & value.keys()):
        return StepResult(value)
    rest = {k: v for k, v in value.items() if k not in ("$error", "$warning")}
    if "$error" in value:
        failure = _user_error(value["$error"], "error")
        failure.output = rest or None
        raise failure
    specs = value["$warning"] if isinstance(value["$warning"], list) else [value["$warning"]]
    return StepResult(rest, warnings=[_user_error(s, "warning") for s in specs])


def _failure(out: SandboxOutcome) -> StepFailure:
    """The failure for every outcome but ``ok``."""
    err = out.error
    if out.status == "raised":
        message = f"{err.get('type') or 'Error'}: {err.get('message') or ''}".rstrip(": ")
        return StepFailure(str(err.get("code") or "CODE_EXCEPTION"), message,
                           detail=(err.get("traceback") or None))
    if out.status == "syntax":
        line = f" (line {err['line']})" if err.get("line") else ""
        return StepFailure("CODE_SYNTAX_ERROR", f"the script does not compile: {err.get('message')}{line}",
                           retryable=False)
    if out.status == "invalid":
        return StepFailure("CODE_RESULT_INVALID", f"the script returned a value that is not JSON: "
                           f"{err.get('message')}", retryable=False)
    if out.status == "too_large":
        size = f"{err['size']} bytes, " if err.get("size") else ""
        return StepFailure("OUTPUT_TOO_LARGE", f"the script's result is {size}over the output limit",
                           detail="raise settings.limits.outputBytes or return less data")
    if out.status == "oom":
        return StepFailure("SUBPROCESS_OUT_OF_MEMORY", str(err.get("message") or "out of memory"),
                           detail="raise memoryMb on the step (or use less memory)")
    if out.status == "timeout":
        return StepFailure("SUBPROCESS_TIMEOUT", str(err.get("message")), detail="raise the step's timeout")
    return StepFailure("SUBPROCESS_CRASHED", str(err.get("message") or "the script process crashed"),
                       detail=out.stderr[-2048:] or None)


@step_activity("core.code", map_code_exception)
async def code_step(inp: dict[str, Any], ctx: StepContext) -> StepResult:
    """Run the step's script in the sandbox and turn its outcome into a result or a failure."""
    script = inp.get("script")
    if not isinstance(script, str):
        raise StepFailure("VALIDATION_ERROR", "script must be a string", retryable=False)
    language = LANGUAGES.get(str(inp.get("language") or "python").lower())
    if language is None:
        raise StepFailure("CODE_LANGUAGE_UNSUPPORTED", f"unknown language '{inp.get('language')}' (use python "
                          "or javascript)", retryable=False)
    js_path = js_runtime() if language == "javascript" else None
    if language == "javascript" and js_path is None:
        raise StepFailure("CODE_LANGUAGE_UNSUPPORTED", "JavaScript code steps need the optional 'js' extra "
                          "(pip install 'flowtide[js]', which installs mini-racer) on the worker",
                          retryable=False)
    limits = _limits(inp, ctx)
    context = dict(inp.get("$context") or {})
    context["params"] = {k: v for k, v in inp.items() if k not in RESERVED}
    context["env"] = _resolve_env(inp.get("env"), ctx)
    out = await run_in_sandbox(language, script, context, limits, js_path=js_path)
    ctx.console.extend(out.console)
    _warn_missing_layers(out)
    log.debug("code step ran", step_id=ctx.step_id, status=out.status, elapsed_s=round(out.elapsed_s, 3),
              layers=out.layers)
    if out.status == "ok":
        return script_result(out.value)
    raise _failure(out)


def _warn_missing_layers(out: SandboxOutcome) -> None:
    """Say once per worker when a layer could not be applied (old kernel, other OS, seccomp off)."""
    if out.layers is None:
        return  # the child did not report (killed, crashed): nothing learned
    have = {layer.split("-")[0] for layer in out.layers}
    missing = [layer for layer in ("no_new_privs", "landlock", "seccomp") if layer not in have]
    if out.limit_error:
        missing.append("rlimits")
    for layer in missing:
        if layer not in _warned_layers:
            _warned_layers.add(layer)
            # the logger of the configuration in force now: a cached one may hold a stream closed since
            structlog.get_logger("flowtide.code").warning(
                "code sandbox layer unavailable on this worker", layer=layer, detail=out.limit_error,
                hint="run workers on Linux >= 6.7 with Landlock enabled, or in a container per tenant")

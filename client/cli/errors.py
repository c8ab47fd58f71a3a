"""Turn whatever a ``flowtide`` command raised into one line (or one JSON object) and an exit code."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any

from flowtide.client.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_NOT_FOUND,
    EXIT_UNREACHABLE,
    NotFound,
    UsageError,
)

# (module, class) -> error code; exit 2. Looked up in sys.modules: an exception of a module that was never
# imported cannot have been raised, and printing --help must not import the Temporal SDK to find out.
_INVALID = {
    ("flowtide.client.resolve", "RunNotFound"): "RUN_NOT_FOUND",
    ("flowtide.client.listing", "BadFilterError"): "INVALID_FILTER",
    ("flowtide.client.reuse", "RerunRefused"): "RERUN_REFUSED",
    ("flowtide.client.replay", "BadHistoryError"): "INVALID_HISTORY",
    ("flowtide.client.codec", "CodecKeyError"): "CODEC_KEY",
    ("flowtide.client.connect", "ConnectConfigError"): "CONNECT_CONFIG",
    ("flowtide.client.schedules", "ScheduleError"): "INVALID_SCHEDULE",
    ("flowtide.guards.tracing", "TracingConfigError"): "TRACING_CONFIG",
    ("flowtide.worker.app", "WorkerConfigError"): "WORKER_CONFIG",
}
_SA_HINT = (" Register Flowtide's search attributes on this namespace (docs/operations.md, 'Search attributes'); "
            "`flowtide server` does it for the embedded server.")


@dataclass
class Failure:
    """What to tell the user: an exit code, a stable error code and a one-line message."""

    exit: int
    code: str
    message: str
    extra: dict[str, Any] = field(default_factory=dict)


def _is(exc: BaseException, module: str, name: str) -> bool:
    mod = sys.modules.get(module)
    cls = getattr(mod, name, None) if mod else None
    return isinstance(cls, type) and isinstance(exc, cls)


def one_line(text: str) -> str:
    """Collapse whitespace so a message stays on one line."""
    return " ".join(str(text).split())


def _rpc(exc: Any) -> Failure:
    from temporalio.service import RPCStatusCode
    status = exc.status
    if status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
        return Failure(EXIT_UNREACHABLE, "TEMPORAL_UNREACHABLE", f"Temporal stopped answering: {exc.message}")
    hint = _SA_HINT if "search attribute" in exc.message else ""
    invalid = status in (RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.ALREADY_EXISTS, RPCStatusCode.OUT_OF_RANGE)
    exit_code = EXIT_NOT_FOUND if status == RPCStatusCode.NOT_FOUND else EXIT_INVALID if invalid else EXIT_FAILED
    return Failure(exit_code, f"TEMPORAL_{status.name}",
                   f"Temporal refused the request ({status.name}): {exc.message.rstrip('.')}.{hint}")


def classify(exc: BaseException) -> Failure | None:
    """The ``Failure`` for an expected exception; ``None`` for a bug (the caller still prints one line)."""
    if isinstance(exc, NotFound) or _is(exc, "flowtide.client.resolve", "NoSuchRun"):
        return Failure(EXIT_NOT_FOUND, "RUN_NOT_FOUND" if not isinstance(exc, NotFound) else exc.code, str(exc))
    if isinstance(exc, UsageError):
        return Failure(EXIT_INVALID, exc.code, str(exc))
    if _is(exc, "flowtide.workflows.errors", "FlowValidationError"):
        problems = [p.to_dict() for p in exc.problems]  # type: ignore[attr-defined]
        src = f"{getattr(exc, 'source', '')}: " if getattr(exc, "source", None) else ""
        return Failure(EXIT_INVALID, "INVALID_FLOW", f"{src}{problems[0]['message'] if problems else exc}",
                       {"problems": problems})
    for (module, name), code in _INVALID.items():
        if _is(exc, module, name):
            return Failure(EXIT_INVALID, code, str(exc))
    if _is(exc, "flowtide.store.database", "StoreError") or _is(exc, "flowtide.service.errors",
                                                                       "ApiError"):
        # a refused admin action (`flowtide projects|keys|flows ...`): the service's own words and problems
        return Failure(EXIT_INVALID, "REFUSED", str(exc),
                       {"problems": getattr(exc, "extensions", {}).get("problems") or []})
    if _is(exc, "flowtide.client.connect", "TemporalUnreachable"):
        hint = (" Give its CA with --tls-ca-path (TEMPORAL_TLS_SERVER_CA_CERT_PATH)" if "certificate" in str(exc) else
                " Start one with `flowtide server` or set --address / TEMPORAL_ADDRESS")
        return Failure(EXIT_UNREACHABLE, "TEMPORAL_UNREACHABLE", f"{exc}.{hint}")
    if _is(exc, "temporalio.service", "RPCError"):
        return _rpc(exc)
    if _is(exc, "temporalio.client", "WorkflowAlreadyStartedError"):
        return Failure(EXIT_INVALID, "ALREADY_STARTED", f"a run with this workflow id already exists: {exc}")
    if isinstance(exc, KeyboardInterrupt):
        return Failure(EXIT_INTERRUPTED, "INTERRUPTED",
                       "interrupted: the run goes on in Temporal; follow it with `flowtide runs watch <run>` "
                       "(it needs a worker: `flowtide worker`)")
    return None


def report(exc: BaseException, as_json: bool, fmt: str | None = None) -> int:
    """Print ``exc`` and return its exit code: one line on stderr; with ``-o json`` or ``-o jsonl``
    (``fmt``) one compact ``{"error": ...}`` object on stderr (standard output holds only data); with ``--json``
    alone ``{"error": ...}`` on stdout, as before ``-o`` existed."""
    failure = classify(exc) or Failure(EXIT_FAILED, "INTERNAL_ERROR",
                                       f"internal error: {type(exc).__name__}: {exc} "
                                       "(set FLOWTIDE_DEBUG=1 for the traceback)")
    message = one_line(failure.message)
    error = {"error": {"code": failure.code, "message": message, **failure.extra}}
    if fmt in ("json", "jsonl"):
        print(json.dumps(error, ensure_ascii=False), file=sys.stderr)
    elif as_json:
        print(json.dumps(error, indent=2))
    elif failure.code == "INVALID_FLOW":
        _problem_lines(exc)
    else:
        print(f"flowtide: {message}", file=sys.stderr)
        for p in failure.extra.get("problems") or []:
            print(f"flowtide:   {p['path']}: {one_line(p['message'])}", file=sys.stderr)
    return failure.exit


def _problem_lines(err: Any) -> None:
    for p in err.problems:
        print(problem_line(err.source, p), file=sys.stderr)


def problem_line(source: str, p: Any) -> str:
    """One problem of a flow on one line, as compilers write them: ``file:line:column: severity: path: message``
    (without ``line:column`` when the problem has no place in a text)."""
    at = f":{p.line}:{p.column}" if getattr(p, "line", None) else ""
    src = f"{source}{at}: " if source else ""
    where = f"{p.path}: " if p.path else ""
    return f"{src}{p.severity}: {where}{one_line(p.message)}"

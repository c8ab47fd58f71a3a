"""``flowtide``: the argument parser and ``main``; the commands live in the ``cli_*`` modules, imported when run.

Exit codes: 0 the run completed (also with errors), 1 it failed / was cancelled / timed out or Temporal
refused a request, 2 the flow or the input is invalid (nothing was started), 3 Temporal cannot be reached,
4 what the command names does not exist (a run, a schedule, an example), 130 interrupted.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Callable
from importlib import import_module
from typing import Any

from flowtide import __version__
from flowtide.client.cli.common import EXIT_OK
from flowtide.client.cli.errors import report
from flowtide.client.cli.parsers import (
    Parser,
    add_command,
    add_input,
    add_output_formats,
    finish_help,
    register_runs,
)
from flowtide.dev import DEFAULT_DB, DEMO_PORT

CMDS = "flowtide.client.cli.cmds"
OFFLINE = "flowtide.client.cli.offline"
# print only: no logging setup (fast)
LOGLESS = frozenset({"validate", "schema", "codes", "completion", "examples", "init"})


def _server_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--port", type=int, default=7233)
    sp.add_argument("--ui-port", type=int, default=8233)
    sp.add_argument("--db-file", default=DEFAULT_DB)


def _register_core(sub: Any) -> None:
    sp = add_command(sub, "server", f"{CMDS}:cmd_server", "run the embedded Temporal dev server (foreground)",
                     "flowtide server --port 7233 --db-file .flowtide/temporal.db", temporal=False)
    _server_args(sp)
    sp = add_command(sub, "dev", f"{CMDS}:cmd_dev", "embedded server, Web UI, worker, HTTP API and the local demo "
                     "service in one command", "flowtide dev --task-queue flowtide", temporal=False,
                     env=("FLOWTIDE_TASK_QUEUE",))
    _server_args(sp)
    sp.add_argument("--task-queue")
    sp.add_argument("--demo-port", type=int, default=DEMO_PORT,
                    help=f"port of the local demo service the examples call (default {DEMO_PORT}; 0: none)")
    sp.add_argument("--verbose", action="store_true", help="log every start-up step (database migrations too)")
    sp = add_command(sub, "worker", f"{CMDS}:cmd_worker", "run a worker for every step kind",
                     "flowtide worker --address temporal:7233 --metrics-port 9464",
                     env=("FLOWTIDE_TASK_QUEUE", "FLOWTIDE_METRICS_PORT", "FLOWTIDE_LOG_LEVEL", "FLOWTIDE_OTEL",
                          "OTEL_EXPORTER_OTLP_ENDPOINT"))
    sp.add_argument("--task-queue")
    sp.add_argument("--metrics-port", type=int,
                    help="serve Prometheus metrics on this port (interface: FLOWTIDE_METRICS_HOST, default 0.0.0.0)")
    sp = add_command(sub, "run", f"{CMDS}:cmd_run", "validate, start, wait and print a run",
                     "flowtide run examples/hello.yaml --input '{\"customerId\": \"7\"}'",
                     env=("FLOWTIDE_TASK_QUEUE", "FLOWTIDE_DB", "FLOWTIDE_MAX_INPUT_BYTES"))
    sp.add_argument("file")
    add_input(sp)
    sp.add_argument("--no-worker", action="store_true", help="rely on workers already polling")
    sp.add_argument("--task-queue")
    sp = add_command(sub, "demo", f"{CMDS}:cmd_demo", "run the demo flow against a local service that fails on "
                     "purpose", "flowtide demo")
    sp.add_argument("--task-queue")
    sp = add_command(sub, "validate", f"{OFFLINE}:cmd_validate", "check flow files", "flowtide validate flows/*.yaml",
                     temporal=False)
    sp.add_argument("files", nargs="+")
    add_command(sub, "schema", f"{OFFLINE}:cmd_schema", "print the JSON Schema of flow documents",
                "flowtide schema > flow.schema.json", temporal=False)
    sp = add_command(sub, "init", "flowtide.client.cli.init:cmd_init", "write a starter project: a flow, a worker "
                     "module, a test and a README", "flowtide init my-flows", temporal=False)
    sp.add_argument("name", help="the new project's directory")
    sp = add_command(sub, "examples", f"{OFFLINE}:cmd_examples", "list the example flows shipped with Flowtide",
                     "flowtide run $(flowtide examples greet) --input '{\"name\": \"Ada\"}'", temporal=False)
    sp.add_argument("name", nargs="?", help="print the path of this example")
    sp = add_command(sub, "codes", f"{OFFLINE}:cmd_codes", "print the error taxonomy", "flowtide codes --permanent",
                     temporal=False)
    sp.add_argument("--permanent", action="store_true", help="only the custom-mode denylist")
    sp = add_command(sub, "signal", f"{CMDS}:cmd_signal", "send a named signal to a run",
                     "flowtide signal 0194c2 approval --data '{\"approved\": true}'")
    sp.add_argument("run")
    sp.add_argument("name")
    sp.add_argument("--data", help="JSON payload")
    sp = add_command(sub, "cancel", f"{CMDS}:cmd_cancel", "cancel a run", "flowtide cancel 0194c2")
    sp.add_argument("run")
    sp.add_argument("--grace", type=float, default=10.0, metavar="SECONDS",
                    help="wait this long for the run to end; then terminate it if its workflow task is failing")


def build_parser() -> argparse.ArgumentParser:
    """The ``flowtide`` parser; each ``register`` adds one family of subcommands."""
    p = Parser(prog="flowtide", description="Durable JSON/YAML flows on Temporal",
               epilog="Exit codes: 0 ok, 1 run failed or Temporal refused, 2 invalid flow/input, "
                      "3 Temporal unreachable, 4 not found, 130 interrupted.")
    p.add_argument("--version", action="version", version=f"flowtide {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=Parser)
    _register_core(sub)
    register_runs(sub)
    from flowtide.client.cli.parsers import register_schedule, register_tools
    register_schedule(sub)
    register_tools(sub)
    from flowtide.client.cli.service import register as register_service  # stdlib only at import: --help stays fast
    register_service(sub)
    from flowtide.client.cli.connections import register as register_connections
    register_connections(sub)
    from flowtide.client.cli.breakers import register as register_breakers
    register_breakers(sub)
    from flowtide.client.cli.testing import register as register_test
    register_test(sub)
    finish_help(p)
    add_output_formats(p)
    return p


def _resolve(fn: str | Callable[..., Any]) -> Callable[..., Any]:
    # commands are named "module:function" so --help imports no command module (and no Temporal SDK)
    if callable(fn):
        return fn
    module, _, name = fn.partition(":")
    return getattr(import_module(module), name)  # type: ignore[no-any-return]


def _as_lines(args: argparse.Namespace) -> int:
    """``-o jsonl``: the command's JSON, one compact object per line (a list: one line per row)."""
    import contextlib
    import io
    import json
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            code = _execute(args)
    finally:
        text = buffer.getvalue()
        try:
            value = json.loads(text)
        except ValueError:  # not one JSON document: as it came
            sys.stdout.write(text)
        else:
            for row in value if isinstance(value, list) else [value]:
                print(json.dumps(row, ensure_ascii=False))
    return code


def _safe_streams() -> None:
    # user data may hold lone surrogates or characters the terminal's encoding lacks: escape, never crash
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
        except (AttributeError, ValueError):
            pass


def _execute(args: argparse.Namespace) -> int:
    result = _resolve(args.fn)(args)
    if hasattr(result, "__await__"):  # an async command (asyncio is imported only then)
        import asyncio
        try:
            result = asyncio.run(result)
        finally:
            # Free the Temporal client's native objects now, not during interpreter shutdown, where
            # they crashed ~1 run in 10 with "Fatal Python error: PyGILState_Release" (sdk-python #300)
            import gc
            gc.collect()
    return int(result)


def main(argv: list[str] | None = None) -> int:
    """Run ``flowtide ARGV``; every failure is one line on stderr (or JSON on stdout) and an exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    _safe_streams()
    # known before the arguments parse, so that a usage error is reported in the format asked for
    fmt = next((value for flag, value in itertools.pairwise(argv) if flag in ("-o", "--output")
                and value in ("json", "jsonl", "table")), None)
    as_json = "--json" in argv or fmt in ("json", "jsonl")
    try:
        args = build_parser().parse_args(argv)
        fmt = getattr(args, "format", None)
        if fmt is not None:  # -o json|jsonl is --json; -o table is the text, even with --json before it
            args.json = fmt != "table"
        as_json = bool(getattr(args, "json", False))
        if args.cmd not in LOGLESS:
            from flowtide.client.cli.logs import configure
            # `test` talks to the test server only: the SDK's warnings about its capabilities are noise there
            configure("INFO" if args.cmd in ("worker", "dev", "server") else "ERROR" if args.cmd == "test"
                      else "WARNING")
            if args.cmd == "dev" and not args.verbose:  # the first screen says where things are, not how
                import logging
                logging.getLogger("alembic").setLevel(logging.WARNING)
            if args.cmd != "worker":  # the worker installs its own (with metrics) before connecting
                from flowtide.worker.telemetry import install_runtime
                install_runtime()
        return _as_lines(args) if fmt == "jsonl" else _execute(args)
    except BrokenPipeError:  # `flowtide schema | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except SystemExit:
        raise
    except BaseException as exc:
        if os.environ.get("FLOWTIDE_DEBUG"):
            raise
        return report(exc, as_json, fmt)


if __name__ == "__main__":
    sys.exit(main())

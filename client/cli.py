"""``flowtide``: argument parsing and printing only; the work is done by the other client modules.

Exit codes: 0 the run completed (also with errors), 1 it failed / was cancelled / timed out,
2 the flow or the input is invalid (nothing was started), 3 Temporal cannot be reached, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from temporalio.service import RPCError

from flowtide.client import render
from flowtide.client.codec import CodecKeyError
from flowtide.client.connect import TemporalUnreachable, connect, target_from_env
from flowtide.client.devserver import DEFAULT_DB, DevServer, port_open
from flowtide.client.logs import configure
from flowtide.client.runs import TERMINAL_FAILURES
from flowtide.workflows.errors import FlowValidationError

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


def _err(msg: str) -> None:
    print(f"flowtide: {msg}", file=sys.stderr)


# ---- input ----------------------------------------------------------------------------------------
def read_payload(args: argparse.Namespace) -> Any:
    """The trigger payload from ``--input JSON`` or ``--input-file F`` (JSON or YAML)."""
    if getattr(args, "input", None) is not None and getattr(args, "input_file", None):
        raise UsageError("give --input or --input-file, not both")
    if getattr(args, "input_file", None):
        path = Path(args.input_file)
        if not path.is_file():
            raise UsageError(f"--input-file {path}: no such file")
        text, where = path.read_text(encoding="utf-8"), str(path)
        if path.suffix in (".yaml", ".yml"):
            import yaml
            try:
                return yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise UsageError(f"{where}: invalid YAML: {exc}") from None
    elif getattr(args, "input", None) is not None:
        text, where = args.input, "--input"
    else:
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None


def load_flow(path: str) -> Any:
    from flowtide.workflows.dsl import load_flow_file
    return load_flow_file(path)


def print_problems(err: FlowValidationError, as_json: bool = False) -> None:
    if as_json:
        print(json.dumps({"valid": False, "problems": [p.to_dict() for p in err.problems]}, indent=2))
        return
    src = f"{err.source}: " if err.source else ""
    for p in err.problems:
        where = f"{p.path}: " if p.path else ""
        print(f"{src}{p.severity}: {where}{p.message}", file=sys.stderr)


# ---- server / worker ------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def temporal(ensure: bool = True) -> AsyncIterator[Any]:
    """A connected client; starts the embedded server for the duration when nothing listens on 7233."""
    target = target_from_env()
    server = None
    if ensure and not target.explicit and not port_open("127.0.0.1", 7233):
        server = DevServer(port=7233, ui_port=8233, db_file=os.environ.get("FLOWTIDE_DB", DEFAULT_DB))
        await asyncio.to_thread(server.start)
        print(f"flowtide: started the embedded Temporal server (Web UI http://127.0.0.1:8233, "
              f"data {server.db_file}) for this command", file=sys.stderr)
    try:
        yield await connect()
    finally:
        if server is not None:
            await asyncio.to_thread(server.stop)


@contextlib.asynccontextmanager
async def maybe_worker(client: Any, task_queue: str, enabled: bool) -> AsyncIterator[None]:
    if not enabled:
        yield
        return
    from flowtide.worker.app import running
    async with running(client, task_queue, graceful_shutdown_s=5):
        yield


def task_queue(args: argparse.Namespace) -> str:
    return getattr(args, "task_queue", None) or os.environ.get("FLOWTIDE_TASK_QUEUE", "flowtide")


async def cmd_server(args: argparse.Namespace) -> int:
    server = DevServer(port=args.port, ui_port=args.ui_port, db_file=args.db_file, quiet=False)
    await asyncio.to_thread(server.start)
    print(f"Temporal at {server.address}, Web UI http://127.0.0.1:{args.ui_port}, data {args.db_file}. "
          "Ctrl-C stops it.", file=sys.stderr)
    try:
        await _wait_for_stop()
    finally:
        await asyncio.to_thread(server.stop)
    return EXIT_OK


async def _wait_for_stop() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def cmd_worker(args: argparse.Namespace) -> int:
    from flowtide.worker.app import running
    client = await connect()
    print(f"flowtide worker polling task queue '{task_queue(args)}' at {target_from_env().address}",
          file=sys.stderr)
    async with running(client, task_queue(args)):
        await _wait_for_stop()
        print("flowtide worker: stopping; in-flight steps may finish (graceful shutdown)", file=sys.stderr)
    return EXIT_OK


async def cmd_dev(args: argparse.Namespace) -> int:
    from flowtide.worker.app import running
    server = DevServer(port=args.port, ui_port=args.ui_port, db_file=args.db_file)
    await asyncio.to_thread(server.start)
    try:
        client = await connect(server.address)
        async with running(client, task_queue(args)), _api(args, client):
            print(f"flowtide dev: Temporal {server.address}, Web UI http://127.0.0.1:{args.ui_port}, "
                  f"worker on '{task_queue(args)}'. Ctrl-C stops.", file=sys.stderr)
            await _wait_for_stop()
    finally:
        await asyncio.to_thread(server.stop)
    return EXIT_OK


def _api(args: argparse.Namespace, client: Any) -> Any:
    from flowtide.client.cli_service import serving
    return serving("127.0.0.1", args.api_port, client, task_queue(args)) if args.api_port else contextlib.nullcontext()


# ---- run ------------------------------------------------------------------------------------------
async def execute_flow(path: str, payload: Any, *, json_out: bool, worker: bool, tq: str,
                       extra_env: dict[str, str] | None = None) -> int:
    """Validate, start, wait, print. Shared by ``run`` and ``demo``."""
    from flowtide.client.api import prepare
    from flowtide.client.runs import start_run, wait_record
    flow, wire = prepare(Path(path), payload)
    for w in flow.warnings:
        print(f"{path}: warning: {w}", file=sys.stderr)
    async with temporal() as client, maybe_worker(client, tq, worker):
        handle = await start_run(client, wire, payload, task_queue=tq)
        if not json_out:
            print(f"Started run {handle.id} (flow {wire['id']} v{wire.get('version', 1)})", file=sys.stderr)
        try:
            record = await wait_record(handle)
        except asyncio.CancelledError:
            raise
    print(json.dumps(record, indent=2, default=str) if json_out else render.record_text(record))
    return EXIT_FAILED if record.get("status") in TERMINAL_FAILURES else EXIT_OK


async def cmd_run(args: argparse.Namespace) -> int:
    payload = read_payload(args)
    return await execute_flow(args.file, payload, json_out=args.json, worker=not args.no_worker,
                              tq=task_queue(args))


async def cmd_demo(args: argparse.Namespace) -> int:
    from flowtide.client.demo import run_demo
    # its own task queue: a worker already polling `flowtide` (say `flowtide dev`) must not take the demo's run,
    # which only the demo's worker may send to its loopback service
    tq = args.task_queue or f"flowtide-demo-{uuid.uuid4().hex[:8]}"
    return await run_demo(json_out=args.json, execute=execute_flow, tq=tq)


def cmd_validate(args: argparse.Namespace) -> int:
    worst = EXIT_OK
    results = []
    for f in args.files:
        try:
            flow = load_flow(f)
            results.append({"file": f, "valid": True, "problems": [w.to_dict() for w in flow.warnings]})
            if not args.json:
                print(f"{f}: ok ({len(flow.warnings)} warning(s))")
                for w in flow.warnings:
                    print(f"{f}: warning: {w}")
        except FlowValidationError as err:
            worst = EXIT_INVALID
            results.append({"file": f, "valid": False, "problems": [p.to_dict() for p in err.problems]})
            if not args.json:
                for p in err.problems:
                    print(f"{f}: {p.severity}: {p}")
    if args.json:
        print(json.dumps(results, indent=2))
    return worst


def cmd_schema(args: argparse.Namespace) -> int:
    from flowtide.workflows.dsl import flow_json_schema
    print(json.dumps(flow_json_schema(), indent=2))
    return EXIT_OK


def cmd_codes(args: argparse.Namespace) -> int:
    from flowtide.workflows.errors import TAXONOMY, codes_of_class
    if args.permanent:
        codes = codes_of_class("permanent", "auth", "invalid-config")
        print(json.dumps(codes) if args.json else "\n".join(codes))
        return EXIT_OK
    rows = sorted(TAXONOMY.values(), key=lambda r: (r.family, r.code))
    if args.json:
        print(json.dumps([{"code": r.code, "family": r.family, "class": r.cls, "description": r.description}
                          for r in rows], indent=2))
        return EXIT_OK
    print(f"{'CODE':32} {'FAMILY':11} {'CLASS':15} DESCRIPTION")
    for r in rows:
        print(f"{r.code:32} {r.family:11} {r.cls:15} {r.description}")
    return EXIT_OK


async def cmd_signal(args: argparse.Namespace) -> int:
    from flowtide.client.resolve import resolve_run
    data = json.loads(args.data) if args.data else None
    async with temporal(ensure=False) as client:
        handle = await resolve_run(client, args.run)
        await handle.signal(args.name, data)
    print(f"signal '{args.name}' sent to {handle.id}")
    return EXIT_OK


async def cmd_cancel(args: argparse.Namespace) -> int:
    from flowtide.client.resolve import resolve_run
    async with temporal(ensure=False) as client:
        handle = await resolve_run(client, args.run)
        await handle.cancel()
    print(f"cancellation requested for {handle.id}")
    return EXIT_OK


# ---- parser ---------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="flowtide", description="Durable JSON/YAML flows on Temporal")
    sub = p.add_subparsers(dest="cmd", required=True)

    def add(name: str, fn: Callable[..., Any], help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(fn=fn)
        return sp

    for name, fn, help_ in (("server", cmd_server, "run the embedded Temporal dev server (foreground)"),
                            ("dev", cmd_dev, "embedded server + worker in one command")):
        sp = add(name, fn, help_)
        sp.add_argument("--port", type=int, default=7233)
        sp.add_argument("--ui-port", type=int, default=8233)
        sp.add_argument("--db-file", default=DEFAULT_DB)
        if name == "dev":
            sp.add_argument("--task-queue")
    add("worker", cmd_worker, "run a worker for every step kind").add_argument("--task-queue")
    sp = add("run", cmd_run, "validate, start, wait and print a run")
    sp.add_argument("file")
    sp.add_argument("--input", help="trigger payload as JSON")
    sp.add_argument("--input-file", help="trigger payload file (JSON or YAML)")
    sp.add_argument("--json", action="store_true", help="print the run record as JSON")
    sp.add_argument("--no-worker", action="store_true", help="rely on workers already polling")
    sp.add_argument("--task-queue")
    sp = add("demo", cmd_demo, "run the demo flow against a local service that fails on purpose")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--task-queue")
    sp = add("validate", cmd_validate, "check flow files")
    sp.add_argument("files", nargs="+")
    sp.add_argument("--json", action="store_true")
    add("schema", cmd_schema, "print the JSON Schema of flow documents")
    sp = add("codes", cmd_codes, "print the error taxonomy")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--permanent", action="store_true", help="only the custom-mode denylist")
    sp = add("signal", cmd_signal, "send a named signal to a run")
    sp.add_argument("run")
    sp.add_argument("name")
    sp.add_argument("--data", help="JSON payload")
    sp = add("cancel", cmd_cancel, "cancel a run")
    sp.add_argument("run")
    from flowtide.client.cli_runs import register  # imported here: it builds on this module's helpers
    register(sub)
    __import__("flowtide.client.cli_service", fromlist=["register"]).register(sub)
    __import__("flowtide.client.cli_connections", fromlist=["register"]).register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure("INFO" if args.cmd in ("worker", "dev", "server") else "WARNING")
    try:
        result = args.fn(args)
        if asyncio.iscoroutine(result):
            try:
                result = asyncio.run(result)
            finally:
                # Free the Temporal client's native objects now, not during interpreter shutdown, where
                # they crashed ~1 run in 10 with "Fatal Python error: PyGILState_Release" (sdk-python #300)
                gc.collect()
        return int(result)
    except FlowValidationError as err:
        print_problems(err, as_json=bool(getattr(args, "json", False)))
        return EXIT_INVALID
    except UsageError as err:
        _err(str(err))
        return EXIT_INVALID
    except CodecKeyError as err:
        _err(str(err))
        return EXIT_INVALID
    except RPCError as err:  # the server refused a request: say what it said, not a traceback
        hint = ""
        if "search attribute" in err.message:
            hint = (" Register Flowtide's search attributes on this namespace (docs/operations.md, "
                    "'Search attributes'); `flowtide server` does it for the embedded server.")
        _err(f"Temporal refused the request ({err.status.name}): {err.message}.{hint}")
        return EXIT_UNREACHABLE
    except TemporalUnreachable as err:
        _err(f"{err}. Start one with `flowtide server` or set TEMPORAL_ADDRESS.")
        return EXIT_UNREACHABLE
    except BrokenPipeError:  # `flowtide schema | head`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        _err("interrupted: the run goes on in Temporal; follow it with `flowtide runs watch <run>` "
             "(it needs a worker: `flowtide worker`)")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())

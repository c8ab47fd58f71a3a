"""The ``flowtide`` commands that talk to Temporal: server, dev, worker, run, demo, signal, cancel."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import structlog

from flowtide.client import render
from flowtide.client.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    connect_options,
    dump,
    maybe_worker,
    parse_json,
    read_payload,
    stop_event,
    task_queue,
    temporal,
    wait_for_stop,
)
from flowtide.client.connect import connect, resolve_target
from flowtide.client.runs import TERMINAL_FAILURES
from flowtide.dev.server import DevServer

log = structlog.get_logger("flowtide.cli")


async def cmd_server(args: argparse.Namespace) -> int:
    stop = stop_event()
    server = DevServer(port=args.port, ui_port=args.ui_port, db_file=args.db_file, quiet=False)
    await asyncio.to_thread(server.start)
    log.info("Temporal dev server running; Ctrl-C stops it", address=server.address,
             web_ui=f"http://127.0.0.1:{args.ui_port}", data=args.db_file)
    try:
        await wait_for_stop(stop)
    finally:
        await asyncio.to_thread(server.stop)
    return EXIT_OK


def _metrics_port(args: argparse.Namespace) -> int | None:
    raw = getattr(args, "metrics_port", None) or os.environ.get("FLOWTIDE_METRICS_PORT")
    return int(raw) if raw else None


async def cmd_worker(args: argparse.Namespace) -> int:
    from flowtide.worker.app import running
    options = connect_options(args)
    port = _metrics_port(args)
    from flowtide.worker.telemetry import install_prometheus, install_runtime
    if port:
        install_prometheus(port)
    else:
        install_runtime()
    client = await connect(options=options)
    log.info("flowtide worker polling task queue", task_queue=task_queue(args), address=resolve_target(options).address,
             metrics=f":{port}/metrics" if port else None)
    async with running(client, task_queue(args)):
        await wait_for_stop()
        log.info("flowtide worker stopping; in-flight steps may finish (graceful shutdown)")
    return EXIT_OK


async def cmd_dev(args: argparse.Namespace) -> int:
    from flowtide.worker.app import running
    stop = stop_event()
    with _demo_service(args.demo_port) as demo:
        server = DevServer(port=args.port, ui_port=args.ui_port, db_file=args.db_file)
        await asyncio.to_thread(server.start)
        try:
            client = await connect(server.address)
            async with running(client, task_queue(args)), _api(args, client):
                log.info("flowtide dev running; Ctrl-C stops", address=server.address,
                         web_ui=f"http://127.0.0.1:{args.ui_port}", task_queue=task_queue(args),
                         api=f"http://127.0.0.1:{args.api_port}" if getattr(args, "api_port", 0) else None,
                         demo_service=demo)
                await wait_for_stop(stop)
        finally:
            await asyncio.to_thread(server.stop)
    return EXIT_OK


@contextlib.contextmanager
def _demo_service(port: int) -> Any:
    """The local service the examples call (``examples/hello.yaml``: ``/customers/{id}``), on ``port`` (0: none);
    this process's worker may reach it (``FLOWTIDE_HTTP_ALLOW`` gains 127.0.0.1, as for ``flowtide demo``)."""
    if not port:
        yield None
        return
    import socket

    from flowtide.dev.demo_service import DemoService
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise UsageError(f"port {port} on 127.0.0.1 is taken, so the demo service cannot start there: "
                             "pass --demo-port with a free port (0: no demo service)") from None
    allow = os.environ.get("FLOWTIDE_HTTP_ALLOW", "")
    os.environ["FLOWTIDE_HTTP_ALLOW"] = ",".join(x for x in (allow, "127.0.0.1") if x)
    with DemoService(port=port) as service:
        yield service.url


def _api(args: argparse.Namespace, client: Any) -> Any:
    """The HTTP API next to `flowtide dev`'s server and worker (``--api-port``, 0: none)."""
    from flowtide.client.cli.service import serving
    port = getattr(args, "api_port", 0)
    return serving("127.0.0.1", port, client, task_queue(args)) if port else contextlib.nullcontext()


# ---- run ------------------------------------------------------------------------------------------
async def execute_flow(path: str, payload: Any, *, json_out: bool, worker: bool, tq: str,
                       args: argparse.Namespace | None = None) -> int:
    """Validate, start, wait, print. Shared by ``run`` and ``demo``."""
    from flowtide.client.api import prepare
    from flowtide.client.cli.progress import follow
    from flowtide.client.runs import start_run
    flow, wire = prepare(Path(path), payload)
    for w in flow.warnings:
        print(f"{path}: warning: {w}", file=sys.stderr)
    async with temporal(args) as client, maybe_worker(client, tq, worker):
        handle = await start_run(client, wire, payload, task_queue=tq)
        # later log lines of this command name the run (the worker, started before, keeps its own context)
        structlog.contextvars.bind_contextvars(workflow_id=handle.id, run_id=handle.result_run_id, flow_id=wire["id"])
        if not json_out:
            print(f"Started run {handle.id} (flow {wire['id']} v{wire.get('version', 1)})", file=sys.stderr)
        record = await follow(client, handle, live=not json_out)
    if json_out:
        print(dump(record))
    else:
        from flowtide.client.cli.term import print_text
        print_text(render.record_text(record))
    return EXIT_FAILED if record.get("status") in TERMINAL_FAILURES else EXIT_OK


async def cmd_run(args: argparse.Namespace) -> int:
    payload = read_payload(args)
    return await execute_flow(args.file, payload, json_out=args.json, worker=not args.no_worker,
                              tq=task_queue(args), args=args)


async def cmd_demo(args: argparse.Namespace) -> int:
    from flowtide.dev.demo import run_demo
    # its own task queue: a worker already polling `flowtide` (say `flowtide dev`) must not take the demo's run,
    # which only the demo's worker may send to its loopback service
    tq = args.task_queue or f"flowtide-demo-{uuid.uuid4().hex[:8]}"

    async def execute(path: str, payload: Any, **kw: Any) -> int:
        return await execute_flow(path, payload, args=args, **kw)
    return await run_demo(json_out=args.json, execute=execute, tq=tq)


async def cmd_signal(args: argparse.Namespace) -> int:
    from flowtide.client.resolve import resolve_run
    from flowtide.client.runs import check_value
    data = parse_json(args.data, "--data") if args.data is not None else None
    check_value(data, "--data")
    async with temporal(args, ensure=False) as client:
        handle = await resolve_run(client, args.run)
        await handle.signal(args.name, data)
    if args.json:
        print(dump({"signalled": {"workflowId": handle.id, "runId": handle.run_id, "name": args.name}}))
    else:
        print(f"signal '{args.name}' sent to {handle.id}")
    return EXIT_OK


async def cmd_cancel(args: argparse.Namespace) -> int:
    from flowtide.client.cancel import cancel_run
    from flowtide.client.resolve import resolve_run
    if not 0 <= args.grace < float("inf"):  # NaN too: the wait for the run to end would never time out
        raise UsageError(f"--grace must be a number of seconds, 0 or more, not {args.grace}")
    async with temporal(args, ensure=False) as client:
        handle = await resolve_run(client, args.run)
        ended = await cancel_run(handle, grace_s=args.grace)
    if args.json:
        print(dump({"cancelRequested": {"workflowId": handle.id, "runId": handle.run_id, "status": ended}}))
    elif ended == "terminated":
        print(f"{handle.id} terminated: its workflow task was failing, so the cancel could not be processed")
    else:
        print(f"cancellation requested for {handle.id}: {ended}")
    return EXIT_OK

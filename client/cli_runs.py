"""``flowtide runs list|show|watch|export``, ``flowtide rerun`` and ``flowtide replay``.

Everything here reads Temporal only (visibility, describe, history, results), so it works with no worker
running. Bad input is one line and exit code 2; an unreachable Temporal is exit code 3.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode

from flowtide.client import render, render_runs
from flowtide.client.cli import (
    EXIT_FAILED,
    EXIT_INVALID,
    EXIT_OK,
    UsageError,
    load_flow,
    maybe_worker,
    read_payload,
    temporal,
)
from flowtide.client.connect import TemporalUnreachable
from flowtide.client.history import start_info
from flowtide.client.inspect import RunView, inspect_run
from flowtide.client.listing import STATUSES, BadFilterError, list_runs
from flowtide.client.replay import BadHistoryError, load_history, replay_history
from flowtide.client.rerun import RerunRefused, build_plan
from flowtide.client.resolve import RunNotFound, resolve_run
from flowtide.client.runs import TERMINAL_FAILURES

Command = Callable[[argparse.Namespace], Awaitable[int]]


def guarded(fn: Command) -> Command:
    """Turn the expected failures of a command into one line and an exit code (never a traceback)."""

    @functools.wraps(fn)
    async def run(args: argparse.Namespace) -> int:
        try:
            return await fn(args)
        except (RunNotFound, BadFilterError, RerunRefused, UsageError) as exc:
            # handled here, not in client.cli.main: under ``python -m flowtide.client.cli`` that module is
            # ``__main__`` and would not recognise this module's UsageError class
            print(f"flowtide: {exc}", file=sys.stderr)
            return EXIT_INVALID
        except RPCError as exc:
            if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
                raise TemporalUnreachable(f"Temporal stopped answering: {exc.message}") from None
            print(f"flowtide: Temporal refused the request: {exc.message}", file=sys.stderr)
            return EXIT_INVALID if exc.status in (RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.NOT_FOUND) \
                else EXIT_FAILED
        except BrokenPipeError:  # `flowtide runs show X | head`: the reader left; end quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_OK

    return run


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)


# ---- runs list / show / watch / export ------------------------------------------------------------
@guarded
async def cmd_list(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    async with temporal() as client:
        rows = await list_runs(client, status=args.status, flow=args.flow, run_prefix=args.run_id, limit=args.limit)
    print(_dump([r.to_dict() for r in rows]) if args.json else render_runs.runs_table(rows))
    return EXIT_OK


async def _view(client: Any, ref: str) -> tuple[Any, RunView]:
    handle = await resolve_run(client, ref)
    view = await inspect_run(handle, client)
    return client.get_workflow_handle(handle.id, run_id=view.record.get("runId") or handle.run_id), view


@guarded
async def cmd_show(args: argparse.Namespace) -> int:
    async with temporal() as client:
        _, view = await _view(client, args.run)
    rec = view.record
    if args.step and render.pick_step(rec, args.step) is None:
        raise UsageError(f"run {rec.get('runId')} has no step '{args.step}' "
                         f"(steps: {', '.join(dict.fromkeys(s['stepId'] for s in rec.get('steps') or []))})")
    if args.json:
        if args.step:
            rec = render.pick_step(rec, args.step)[1]  # type: ignore[index]
        print(_dump(rec))
    else:
        print(render.record_text(rec, step=args.step, notes=view.notes()))
    return EXIT_OK


@guarded
async def cmd_watch(args: argparse.Namespace) -> int:
    tty = sys.stdout.isatty()
    last: tuple[Any, ...] | None = None
    async with temporal() as client:
        handle = await resolve_run(client, args.run)
        while True:
            view = await inspect_run(handle, client)
            rec = view.record
            if tty:
                page = render.record_text(rec, notes=view.notes())
                print(f"\033[2J\033[H{page}\n\n{render_runs.progress_bar(rec)}", flush=True)
            else:
                key = _watch_key(rec)
                if key != last:
                    print(render_runs.progress_bar(rec), flush=True)
                    last = key
            if view.execution_status != "running":
                break
            await asyncio.sleep(args.interval)
    if not tty:
        print("\n" + render.record_text(rec))
    return EXIT_FAILED if rec.get("status") in TERMINAL_FAILURES else EXIT_OK


def _watch_key(rec: dict[str, Any]) -> tuple[Any, ...]:
    steps = rec.get("steps") or []
    last = steps[-1] if steps else {}
    return (rec.get("status"), (rec.get("progress") or {}).get("done"), len(steps), last.get("status"),
            (last.get("retry") or {}).get("attempt"))


@guarded
async def cmd_export(args: argparse.Namespace) -> int:
    async with temporal() as client:
        handle, _ = await _pinned(client, args.run)
        history = await handle.fetch_history()
    text = history.to_json()
    if args.output:
        await asyncio.to_thread(Path(args.output).write_text, text, encoding="utf-8")
        print(f"wrote {len(history.events)} events of {history.workflow_id} to {args.output}", file=sys.stderr)
    else:
        print(text)
    return EXIT_OK


async def _pinned(client: Any, ref: str) -> tuple[Any, str]:
    handle = await resolve_run(client, ref)
    desc = await handle.describe()
    return client.get_workflow_handle(handle.id, run_id=desc.run_id), desc.run_id


# ---- replay ---------------------------------------------------------------------------------------
def _history_file(path: str) -> WorkflowHistory:
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"--history {path}: no such file")
    try:
        return load_history(p.read_text(encoding="utf-8"), p.stem)
    except BadHistoryError as exc:
        raise UsageError(f"--history {path}: {exc}") from None


@guarded
async def cmd_replay(args: argparse.Namespace) -> int:
    if bool(args.run) == bool(args.history):
        raise UsageError("give a RUN or --history FILE (one of them)")
    if args.history:
        history, source = _history_file(args.history), args.history
    else:
        async with temporal() as client:
            handle, run_id = await _pinned(client, args.run)
            history, source = await handle.fetch_history(), f"{handle.id} (run {run_id})"
    try:
        report = await replay_history(history)
    except BadHistoryError as exc:
        raise UsageError(f"{source}: {exc}") from None
    if args.json:
        print(_dump(report.__dict__))
    else:
        print(render_runs.replay_text(report, source))
    return EXIT_OK if report.ok else EXIT_FAILED


# ---- rerun ----------------------------------------------------------------------------------------
def _fixed_flow(path: str | None) -> dict[str, Any] | None:
    if not path:
        return None
    from flowtide.client.runs import inline_sub_flows
    return inline_sub_flows(load_flow(path).to_wire(), Path(path).parent)


@guarded
async def cmd_rerun(args: argparse.Namespace) -> int:
    new_flow = _fixed_flow(args.flow)
    input_given = args.input is not None or bool(args.input_file)
    new_input = read_payload(args) if input_given else None
    async with temporal() as client:
        handle, view = await _view(client, args.run)
        if view.execution_status == "running" and not args.dry_run:
            raise UsageError(f"run {handle.run_id} is still {view.record.get('status')}: cancel it first "
                             f"(flowtide cancel {handle.run_id}) or wait for it to end")
        info = await start_info(await handle.fetch_history(), client.data_converter)
        plan = build_plan(info.params, view.record, from_failed=args.from_failed, new_flow=new_flow,
                          new_input=new_input, input_given=input_given, failed_items=args.failed_items)
        source = f"{handle.id} (run {handle.run_id})"
        if args.dry_run:
            print(render_runs.plan_text(plan, source))
            return EXIT_OK
        for note in plan.notes:
            print(f"flowtide: note: {note}", file=sys.stderr)
        return await _start_rerun(client, args, plan, handle.run_id, args.task_queue or info.task_queue)


async def _start_rerun(client: Any, args: argparse.Namespace, plan: Any, old_run_id: str, tq: str) -> int:
    from flowtide.client.runs import start_run, wait_record
    async with maybe_worker(client, tq, enabled=not args.no_worker and not args.no_wait):
        new = await start_run(client, plan.flow, plan.payload, task_queue=tq, reuse=plan.reuse or None,
                              rerun_of=old_run_id)
        print(f"Started run {new.id} (re-run of {old_run_id}; {len(plan.reuse)} step output(s) reused, "
              f"task queue '{tq}')", file=sys.stderr)
        if args.no_wait:
            print(new.id)
            return EXIT_OK
        record = await wait_record(new)
    print(_dump(record) if args.json else render.record_text(record))
    return EXIT_FAILED if record.get("status") in TERMINAL_FAILURES else EXIT_OK


# ---- parser ---------------------------------------------------------------------------------------
def register(sub: Any) -> None:
    """Add ``runs``, ``rerun`` and ``replay`` to the ``flowtide`` parser's subcommands."""
    runs = sub.add_parser("runs", help="list, show, watch and export runs (no worker needed)",
                          description="Inspect runs from Temporal's data; works with no worker running.")
    rsub = runs.add_subparsers(dest="runs_cmd", required=True)
    sp = rsub.add_parser("list", help="recent runs, newest first")
    sp.add_argument("--status", help=", ".join(STATUSES))
    sp.add_argument("--flow", help="flow id")
    sp.add_argument("--run-id", help="run id prefix")
    sp.add_argument("--limit", type=int, default=20)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(fn=cmd_list)
    sp = rsub.add_parser("show", help="one run: overview, timeline, the first failed step expanded")
    sp.add_argument("run", help="run id, unique prefix of one, or workflow id")
    sp.add_argument("--step", help="expand this step (id, or id#index in a loop)")
    sp.add_argument("--json", action="store_true", help="print the run record")
    sp.set_defaults(fn=cmd_show)
    sp = rsub.add_parser("watch", help="refresh until the run ends, with a progress bar")
    sp.add_argument("run")
    sp.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes")
    sp.set_defaults(fn=cmd_watch)
    sp = rsub.add_parser("export", help="write the run's Temporal history JSON")
    sp.add_argument("run")
    sp.add_argument("-o", "--output", help="file (default: standard output)")
    sp.set_defaults(fn=cmd_export)
    _register_rerun(sub)
    from flowtide.client.cli_breakers import register as register_breakers
    register_breakers(sub)
    sp = sub.add_parser("replay", help="replay a run's history against the current interpreter",
                        description="Replays a recorded history with Temporal's Replayer and reports any "
                                    "non-determinism in plain words. Exit 1 when the code diverges.")
    sp.add_argument("run", nargs="?")
    sp.add_argument("--history", help="a history JSON file (flowtide runs export, temporal workflow show -o json)")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(fn=cmd_replay)


def _register_rerun(sub: Any) -> None:
    sp = sub.add_parser("rerun", help="start a new run of a run's flow revision and input",
                        description="A new run of the same flow revision and input, linked to the old run.")
    sp.add_argument("run")
    sp.add_argument("--from-failed", action="store_true",
                    help="reuse the outputs of the steps that completed before the first failed step")
    sp.add_argument("--failed-items", action="store_true",
                    help="each for-each runs only the items that failed (their recorded results are reused); "
                         "steps outside loops as with --from-failed")
    sp.add_argument("--flow", help="re-run on this fixed revision of the flow (step ids must match)")
    sp.add_argument("--input", help="edited trigger payload as JSON")
    sp.add_argument("--input-file", help="edited trigger payload file (JSON or YAML)")
    sp.add_argument("--dry-run", action="store_true", help="print the plan, start nothing")
    sp.add_argument("--json", action="store_true", help="print the new run's record")
    sp.add_argument("--no-wait", action="store_true", help="start it and print its workflow id")
    sp.add_argument("--no-worker", action="store_true", help="rely on workers already polling")
    sp.add_argument("--task-queue", help="default: the old run's task queue")
    sp.set_defaults(fn=cmd_rerun)

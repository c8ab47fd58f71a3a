"""``flowtide runs list|show|watch|export``, ``flowtide rerun`` and ``flowtide replay``.

Everything here reads Temporal only (visibility, describe, history, results), so it works with no worker
running. Failures are turned into one line and an exit code by ``client.cli.errors``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHistory

from flowtide.client import render
from flowtide.client.cli import render_runs
from flowtide.client.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    load_flow,
    maybe_worker,
    read_payload,
    read_text_file,
    temporal,
)
from flowtide.client.cli.common import dump as _dump
from flowtide.client.history import start_info
from flowtide.client.inspect import RunView, inspect_run
from flowtide.client.listing import build_query, list_runs
from flowtide.client.replay import BadHistoryError, load_history, replay_history
from flowtide.client.rerun import build_plan
from flowtide.client.resolve import resolve_run
from flowtide.client.runs import TERMINAL_FAILURES


# ---- runs list / show / watch / export ------------------------------------------------------------
async def cmd_list(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    build_query(args.status, args.flow, args.run_id)  # every filter checked before a server is started or called
    async with temporal(args) as client:
        rows = await list_runs(client, status=args.status, flow=args.flow, run_prefix=args.run_id, limit=args.limit)
    print(_dump([r.to_dict() for r in rows]) if args.json else render_runs.runs_table(rows))
    return EXIT_OK


async def _view(client: Any, ref: str) -> tuple[Any, RunView]:
    handle = await resolve_run(client, ref)
    view = await inspect_run(handle, client)
    return client.get_workflow_handle(handle.id, run_id=view.record.get("runId") or handle.run_id), view


async def cmd_show(args: argparse.Namespace) -> int:
    async with temporal(args) as client:
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


async def cmd_watch(args: argparse.Namespace) -> int:
    if not args.interval > 0:  # also NaN
        raise UsageError(f"--interval must be a number of seconds above 0, not {args.interval}")
    tty = sys.stdout.isatty() and not args.json
    async with temporal(args) as client:
        handle = await resolve_run(client, args.run)
        rec = await (_watch_live(client, handle, args.interval) if tty else _watch_lines(client, handle, args))
    if args.json:
        print(_dump(rec))
    elif not tty:
        print("\n" + render.record_text(rec))
    return EXIT_FAILED if rec.get("status") in TERMINAL_FAILURES else EXIT_OK


async def _watch_live(client: Any, handle: Any, interval: float) -> dict[str, Any]:
    """On a terminal: the run's page and progress line redrawn in place (rich), coloured unless NO_COLOR."""
    from rich.console import Group
    from rich.live import Live

    from flowtide.client.cli.term import console, styled
    with Live(console=console(), auto_refresh=False, vertical_overflow="visible") as live:
        while True:
            view = await inspect_run(handle, client)
            rec = view.record
            page = render.record_text(rec, notes=view.notes())
            live.update(Group(styled(page), styled("\n" + render_runs.progress_bar(rec))), refresh=True)
            if view.execution_status != "running":
                return rec
            await asyncio.sleep(interval)


async def _watch_lines(client: Any, handle: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Not a terminal: one progress line per change (none with --json)."""
    last: tuple[Any, ...] | None = None
    while True:
        view = await inspect_run(handle, client)
        rec = view.record
        if not args.json and (key := _watch_key(rec)) != last:
            print(render_runs.progress_bar(rec), flush=True)
            last = key
        if view.execution_status != "running":
            return rec
        await asyncio.sleep(args.interval)


def _watch_key(rec: dict[str, Any]) -> tuple[Any, ...]:
    steps = rec.get("steps") or []
    last = steps[-1] if steps else {}
    return (rec.get("status"), (rec.get("progress") or {}).get("done"), len(steps), last.get("status"),
            (last.get("retry") or {}).get("attempt"))


async def cmd_export(args: argparse.Namespace) -> int:
    async with temporal(args) as client:
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
    text = read_text_file(path, "--history")
    try:
        return load_history(text, Path(path).stem)
    except BadHistoryError as exc:
        raise UsageError(f"--history {path}: {exc}") from None


async def cmd_replay(args: argparse.Namespace) -> int:
    if bool(args.run) == bool(args.history):
        raise UsageError("give a RUN or --history FILE (one of them)")
    if args.history:
        history, source = _history_file(args.history), args.history
    else:
        async with temporal(args) as client:
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


async def cmd_rerun(args: argparse.Namespace) -> int:
    new_flow = _fixed_flow(args.flow)
    input_given = args.input is not None or bool(args.input_file)
    new_input = read_payload(args) if input_given else None
    async with temporal(args) as client:
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

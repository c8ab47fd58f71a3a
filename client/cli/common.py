"""What every ``flowtide`` command shares: exit codes, input reading, the Temporal connection and task queue.

This module is imported to print ``--help``, so it imports nothing heavy at the top (no Temporal SDK).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from flowtide.dev import DEFAULT_DB

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_UNREACHABLE, EXIT_NOT_FOUND, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
# Temporal refuses payloads over 2 MB by default (the server's limits.blobSize.error); refusing here
# says so in words instead of a gRPC error after the flow has been sent
MAX_INPUT_BYTES = 2 * 1024 * 1024


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""

    code = "INVALID_INPUT"


class NotFound(UsageError):  # noqa: N818 - shown to the user as one line
    """What the command names does not exist: printed as one line, exit code 4."""

    code = "NOT_FOUND"


def max_input_bytes() -> int:
    """The input size limit: ``FLOWTIDE_MAX_INPUT_BYTES`` or 2 MiB."""
    raw = os.environ.get("FLOWTIDE_MAX_INPUT_BYTES", "")
    return int(raw) if raw.isdigit() else MAX_INPUT_BYTES


# ---- input ----------------------------------------------------------------------------------------
def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (JSON has no NaN or Infinity)")


def parse_json(text: str, where: str) -> Any:
    """Strict JSON: NaN, Infinity and numbers too large for a float are refused with ``UsageError``."""
    try:
        return jsonable(json.loads(text, parse_constant=_no_constant), where)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"{where}: {exc}") from None


def jsonable(value: Any, where: str) -> Any:
    """``value`` as plain JSON data: dates become ISO strings; NaN, bytes, sets and the like are refused."""
    if isinstance(value, str | bool | int) or value is None:
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UsageError(f"{where}: {value} is not a JSON number (JSON has no NaN or Infinity)")
        return value
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()  # YAML reads 2024-01-31 as a date; flows see the ISO string
    if isinstance(value, dict):
        return {_key(k, where): jsonable(v, where) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v, where) for v in value]
    raise UsageError(f"{where}: a {type(value).__name__} value is not JSON data")


def _key(key: Any, where: str) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, dt.date | dt.datetime):
        return key.isoformat()
    if isinstance(key, bool | int | float) or key is None:
        return json.dumps(key)  # what JSON does with such keys
    raise UsageError(f"{where}: a {type(key).__name__} mapping key is not JSON data")


def _read_text(path: Path, flag: str) -> str:
    if not path.is_file():
        raise UsageError(f"{flag} {path}: no such file")
    size = path.stat().st_size
    if size > 4 * max_input_bytes():  # do not even read a file that cannot fit
        raise UsageError(f"{flag} {path}: {size / 1e6:.1f} MB is too large (limit {max_input_bytes() / 1e6:.1f} MB)")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{flag} {path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                         f"{exc.start}); give a JSON or YAML file") from None


def read_text_file(path: str, flag: str) -> str:
    """The text of a file given on the command line; missing, binary or huge files are ``UsageError``."""
    return _read_text(Path(path), flag)


def _parse_yaml(text: str, where: str) -> Any:
    import yaml

    from flowtide.workflows.language import yaml_load  # the flows' YAML rules: 1.2 booleans, no duplicate keys
    try:
        return jsonable(yaml_load(text), where)
    except yaml.YAMLError as exc:
        raise UsageError(f"{where}: invalid YAML: {' '.join(str(exc).split())}") from None


def read_payload(args: argparse.Namespace) -> Any:
    """The trigger payload from ``--input JSON`` or ``--input-file F`` (JSON or YAML), checked to be JSON data."""
    given, file = getattr(args, "input", None), getattr(args, "input_file", None)
    if given is not None and file:
        raise UsageError("give --input or --input-file, not both")
    if file:
        text, where = _read_text(Path(file), "--input-file"), file
        payload = _parse_yaml(text, where) if Path(file).suffix in (".yaml", ".yml") else parse_json(text, where)
    elif given is not None:
        where = "--input"
        payload = parse_json(given, where)
    else:
        return {}
    size = len(json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    if size > max_input_bytes():
        raise UsageError(f"{where}: the input is {size / 1e6:.1f} MB; Temporal accepts at most "
                         f"{max_input_bytes() / 1e6:.1f} MB per run input (pass large data by reference, "
                         "e.g. a URL or a file path)")
    return payload


def load_flow(path: str) -> Any:
    """The validated flow in ``path`` (``FlowValidationError`` when it is not valid)."""
    from flowtide.client.flowfiles import load_flow_file
    return load_flow_file(path)


def task_queue(args: argparse.Namespace) -> str:
    """``--task-queue``, ``FLOWTIDE_TASK_QUEUE`` or ``flowtide``."""
    from flowtide.workflows.search_attributes import DEFAULT_TASK_QUEUE  # here: --help must not load the SDK
    return getattr(args, "task_queue", None) or os.environ.get("FLOWTIDE_TASK_QUEUE", DEFAULT_TASK_QUEUE)


def dump(value: Any) -> str:
    """Indented JSON for ``--json`` output."""
    from flowtide.workflows.language import json_safe
    return json.dumps(json_safe(value), indent=2, default=str)  # valid JSON even for NaN recorded in a run


def note(msg: str) -> None:
    """One line on standard error."""
    print(f"flowtide: {msg}", file=sys.stderr)


# ---- server / worker ------------------------------------------------------------------------------
def connect_options(args: argparse.Namespace | None) -> Any:
    """The connection flags of ``args`` (``--address``, ``--profile``, TLS ...) as ``ConnectOptions``."""
    from flowtide.client.connect import ConnectOptions
    names = ("address", "namespace", "profile", "tls", "tls_ca_path", "tls_cert_path", "tls_key_path",
             "tls_server_name", "api_key", "config_file")
    return ConnectOptions(**{n: getattr(args, n, None) for n in names})


@contextlib.asynccontextmanager
async def temporal(args: argparse.Namespace | None = None, ensure: bool = True) -> AsyncIterator[Any]:
    """A connected client; starts the embedded server for the duration when nothing is configured or listening."""
    import asyncio

    from flowtide.client.connect import connect, resolve_target
    from flowtide.dev.server import DevServer, port_open
    options = connect_options(args)
    target = resolve_target(options)
    server = None
    if ensure and not target.explicit and not port_open("127.0.0.1", 7233):
        server = DevServer(port=7233, ui_port=8233, db_file=os.environ.get("FLOWTIDE_DB", DEFAULT_DB))
        await asyncio.to_thread(server.start)
        note(f"started the embedded Temporal server (Web UI http://127.0.0.1:8233, data {server.db_file}) "
             "for this command")
    try:
        yield await connect(options=options)
    finally:
        if server is not None:
            await asyncio.to_thread(server.stop)


@contextlib.asynccontextmanager
async def maybe_worker(client: Any, tq: str, enabled: bool) -> AsyncIterator[None]:
    """A worker on ``tq`` for the duration, when ``enabled``."""
    if not enabled:
        yield
        return
    from flowtide.worker.app import running
    async with running(client, tq, graceful_shutdown_s=5):
        yield


def stop_event() -> asyncio.Event:
    """An event set by SIGINT/SIGTERM. Install it before starting anything: a signal that arrives while a
    server starts must stop it cleanly, not kill this process and orphan the server child."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def wait_for_stop(stop: asyncio.Event | None = None) -> None:
    """Wait for SIGINT/SIGTERM (through ``stop``, or a new event)."""
    await (stop or stop_event()).wait()

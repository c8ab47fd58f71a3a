"""The parent side of the Code step sandbox: one fresh, locked-down child process per script.

``run_in_sandbox`` starts ``activities/_sandbox_runner.py`` with ``asyncio.create_subprocess_exec`` (never a
blocking call: the worker's event loop is shared), in isolated mode (``-I -S -B``), in a new session, in a
fresh scratch directory that is removed afterwards, with an environment that holds nothing of the worker's.
The request goes over stdin; the result comes back on a pipe of its own, framed by a random nonce, so nothing
the script prints can pass for it; the console is read from stdout and the child's stderr is kept as a short
tail for diagnostics. Every stream is read in bounded chunks and abandoned past a budget.

Limits the parent enforces itself: the wall-clock deadline (the whole process group is killed), a resident
memory watchdog (the only OS-level memory bound for JavaScript, whose V8 cannot run under RLIMIT_AS) and a
scratch-directory size watchdog. The child enforces the rest before the script runs (see the runner).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import math
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RUNNER = Path(__file__).with_name("_sandbox_runner.py")
STREAM_BUDGET = 1024 * 1024  # bytes read from stdout or stderr before the parent stops listening
STDERR_TAIL = 4096
OPEN_FILES = 64
MAX_SCRATCH_ENTRIES = 10_000
# Resident memory allowed on top of memoryMb: an idle V8 isolate with its threads measures ~70 MiB here, the
# Python runner ~22 MiB (for Python the watchdog is only a backstop: RLIMIT_AS is tighter).
JS_BASELINE_MB = 96
PY_BASELINE_MB = 64


@dataclass(frozen=True)
class Limits:
    """What one script may use."""

    timeout_s: float
    memory_mb: int
    allow_network: bool = False
    output_bytes: int = 256 * 1024
    console_lines: int = 100
    console_chars: int = 10 * 1024
    allow_nets: tuple[str, ...] = ()  # CIDRs reachable although private (FLOWTIDE_HTTP_ALLOW), with allowNetwork
    metadata: tuple[str, ...] = ()  # cloud metadata addresses: reachable only when listed exactly
    # False only in tests that prove the kernel layers hold on their own; code steps never turn it off
    audit_hook: bool = True

    @property
    def deadline_s(self) -> float:
        """The parent's kill time: a little before the step timeout, so the step fails with the
        sandbox's own code rather than the boundary's generic TIMEOUT."""
        return max(0.05, self.timeout_s - min(0.5, self.timeout_s * 0.05))


@dataclass
class SandboxOutcome:
    """What happened to one script run.

    ``status``: ``ok`` (``value`` holds the result), ``raised``, ``syntax``, ``invalid`` (not JSON),
    ``too_large``, ``oom``, ``timeout`` or ``crashed``; ``error`` holds the details of the others.
    """

    status: str
    value: Any = None
    error: dict[str, Any] = field(default_factory=dict)
    console: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    layers: list[str] | None = None  # the kernel layers the child applied; None when it did not report
    limit_error: str = ""  # why the child could not set its resource limits, if it could not
    returncode: int | None = None
    stderr: str = ""


def js_runtime() -> str | None:
    """The site-packages directory holding ``py_mini_racer`` (PyPI ``mini-racer``), or None."""
    spec = importlib.util.find_spec("py_mini_racer")
    if spec is None or not spec.origin:
        return None
    return str(Path(spec.origin).resolve().parent.parent)


def child_env(scratch: str) -> dict[str, str]:
    """The child's whole environment: nothing of the worker's, only what C libraries and Python expect."""
    return {"LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "HOME": scratch, "TMPDIR": scratch,
            "MALLOC_ARENA_MAX": "2"}  # fewer 64 MiB malloc arenas per thread under RLIMIT_AS


def console_with_note(lines: list[str], dropped: int, limits: Limits) -> list[str]:
    """Kept lines plus one note saying how many were not kept, within the limits the boundary applies."""
    if dropped <= 0:
        return lines
    lines = list(lines)
    while True:
        note = (f"[console truncated: {dropped} more line(s) not kept; limit {limits.console_lines} lines / "
                f"{limits.console_chars // 1024} KB]")
        if len(lines) + 1 <= limits.console_lines and sum(map(len, lines)) + len(note) <= limits.console_chars:
            return [*lines, note]
        lines.pop()
        dropped += 1


class _Run:
    """One child process and the state its readers and watchdog share."""

    def __init__(self, proc: asyncio.subprocess.Process, limits: Limits, scratch: str, rss_limit_kb: int) -> None:
        self.proc, self.limits, self.scratch, self.rss_limit_kb = proc, limits, scratch, rss_limit_kb
        self.killed_for: str | None = None
        self.lines: list[str] = []
        self.chars = 0
        self.extra_lines = 0
        self.stderr = bytearray()

    def kill(self, reason: str) -> None:
        """Kill the whole process group (first reason wins)."""
        if self.killed_for is None:
            self.killed_for = reason
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    async def read_console(self, stream: asyncio.StreamReader) -> None:
        """Keep the first lines within the console limits and count the others."""
        used, partial = 0, b""
        while chunk := await stream.read(65536):
            used += len(chunk)
            *parts, partial = (partial + chunk).split(b"\n")
            if len(partial) > self.limits.console_chars * 4:  # no newline for a long while: cut it here
                parts, partial = [*parts, partial], b""
            for raw in parts:
                self._keep(raw)
            if used > STREAM_BUDGET:  # a flood written around print(): stop listening, its writes will fail
                self.extra_lines += 1
                self._close_pipe(1)
                return
        if partial:
            self._keep(partial)

    def _keep(self, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip("\r")
        if len(self.lines) < self.limits.console_lines and self.chars + len(line) <= self.limits.console_chars:
            self.lines.append(line)
            self.chars += len(line)
        else:
            self.extra_lines += 1

    async def read_stderr(self, stream: asyncio.StreamReader) -> None:
        """Keep the last few KB of the child's own stderr (interpreter and V8 fatal messages)."""
        used = 0
        while chunk := await stream.read(65536):
            used += len(chunk)
            self.stderr = (self.stderr + chunk)[-STDERR_TAIL:]
            if used > STREAM_BUDGET:
                self._close_pipe(2)
                return

    def _close_pipe(self, fd: int) -> None:
        # asyncio.subprocess.Process has no public way to close one pipe; its transport does
        transport = self.proc._transport  # type: ignore[attr-defined]
        pipe = transport.get_pipe_transport(fd) if transport is not None else None
        if pipe is not None:
            pipe.close()

    async def watchdog(self) -> None:
        """Resident memory every 50 ms, the scratch directory every 500 ms."""
        status = f"/proc/{self.proc.pid}/status"
        for tick in range(1, 1 << 62):
            await asyncio.sleep(0.05)
            with contextlib.suppress(OSError, StopIteration, ValueError):
                with open(status, encoding="ascii") as fh:
                    rss = next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
                if rss > self.rss_limit_kb:
                    self.kill("memory")
                    return
            if tick % 10 == 0:
                used = await asyncio.to_thread(_usage, self.scratch)
                if used is None or used > self.limits.memory_mb * 2**20:
                    self.kill("disk")
                    return


def _usage(root: str) -> int | None:
    """Bytes under ``root``, or None when it holds more entries than anyone needs."""
    total, seen, stack = 0, 0, [root]
    while stack:
        with contextlib.suppress(OSError), os.scandir(stack.pop()) as it:
            for entry in it:
                seen += 1
                if seen > MAX_SCRATCH_ENTRIES:
                    return None
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    with contextlib.suppress(OSError):
                        total += entry.stat(follow_symlinks=False).st_blocks * 512
    return total


async def _read_result(fd: int, cap: int) -> bytes | None:
    """Everything written to the result pipe, or None when it exceeds ``cap``."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                os.fdopen(fd, "rb", buffering=0))
    data = bytearray()
    try:
        while chunk := await reader.read(65536):
            data += chunk
            if len(data) > cap:
                return None
    finally:
        transport.close()
    return bytes(data)


def _parse_frame(data: bytes | None, nonce: str) -> dict[str, Any] | None:
    """The runner's frame: the JSON after the last ``<nonce> ``; anything else on the pipe is ignored."""
    if not data:
        return None
    at = data.rfind(nonce.encode() + b" ")
    if at < 0:
        return None
    line = data[at + len(nonce) + 1:].split(b"\n", 1)[0]
    try:
        frame = json.loads(line)
    except ValueError:
        return None
    return frame if isinstance(frame, dict) else None


async def run_in_sandbox(language: str, script: str, context: dict[str, Any], limits: Limits,
                         js_path: str | None = None) -> SandboxOutcome:
    """Run one script in a fresh child process and report what happened.

    Args:
        language: ``python`` or ``javascript`` (then ``js_path`` is the site-packages of mini-racer).
        script: the user's source.
        context: the names the script sees (input, steps, errors, vars, params, item, index, env).
        limits: time, memory, network and output limits.
        js_path: see ``js_runtime``.

    Raises:
        TypeError, ValueError: the context cannot be encoded as JSON.
        OSError: the child could not be started.
    """
    nonce = secrets.token_hex(16)
    request = {"nonce": nonce, "language": language, "script": script, "context": context,
               "memoryMb": limits.memory_mb, "cpuSeconds": math.ceil(limits.timeout_s) + 1,
               "fileBytes": limits.memory_mb * 2**20, "openFiles": OPEN_FILES, "network": limits.allow_network,
               "allowNets": list(limits.allow_nets), "metadata": list(limits.metadata),
               "outputBytes": limits.output_bytes,
               "consoleLines": limits.console_lines, "consoleChars": limits.console_chars,
               "jsPath": js_path, "readRoots": [js_path] if js_path else [], "auditHook": limits.audit_hook}
    payload = json.dumps(request, allow_nan=False, separators=(",", ":")).encode()
    scratch = _make_scratch()
    read_fd, write_fd = os.pipe()
    run: _Run | None = None
    started = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-S", "-B", str(RUNNER), str(write_fd), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=scratch, env=child_env(scratch),
            start_new_session=True, pass_fds=(write_fd,))
        os.close(write_fd)
        write_fd = -1
        baseline = JS_BASELINE_MB if language == "javascript" else PY_BASELINE_MB
        run = _Run(proc, limits, scratch, (limits.memory_mb + baseline) * 1024)
        return await _supervise(run, payload, read_fd, nonce, started)
    finally:
        if write_fd >= 0:
            os.close(write_fd)
        if run is None:
            os.close(read_fd)
        elif run.proc.returncode is None:
            run.kill("cancelled")  # cancelled (or failed) while the child still ran
        await _remove_later(scratch)


def _make_scratch() -> str:
    """A fresh private directory, by its real path (the child's file rules compare real paths)."""
    return os.path.realpath(tempfile.mkdtemp(prefix="flowtide-code-"))


async def _remove_later(scratch: str) -> None:
    """Remove the scratch directory in a thread (it may hold thousands of files)."""
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(None, shutil.rmtree, scratch, True)
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.shield(future)  # a second cancellation must not leave the directory behind


async def _supervise(run: _Run, payload: bytes, read_fd: int, nonce: str, started: float) -> SandboxOutcome:
    """Feed the request, read every stream, enforce the deadline and the watchdog, and judge the end."""
    proc, limits = run.proc, run.limits
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    cap = limits.output_bytes * 2 + 256 * 1024  # the frame escapes, and carries console lines for JavaScript
    tasks = [asyncio.ensure_future(_feed(proc.stdin, payload)), asyncio.ensure_future(run.read_console(proc.stdout)),
             asyncio.ensure_future(run.read_stderr(proc.stderr))]
    result = asyncio.ensure_future(_read_result(read_fd, cap))
    watchdog = asyncio.ensure_future(run.watchdog())
    try:
        try:
            await asyncio.wait_for(proc.wait(), timeout=limits.deadline_s - (time.monotonic() - started))
        except TimeoutError:
            run.kill("timeout")
            await proc.wait()
        elapsed = time.monotonic() - started
        watchdog.cancel()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything left in the group (nothing, unless a layer failed)
        await asyncio.wait([*tasks, result], timeout=2.0)  # the pipes end with the process
    finally:  # also when cancelled: no reader may outlive the call
        for task in (watchdog, *tasks, result):
            task.cancel()
    finished = result.done() and not result.cancelled() and result.exception() is None
    data = result.result() if finished else b""
    frame = _parse_frame(data, nonce)
    stderr = run.stderr.decode("utf-8", "replace")
    outcome = _judge(run, frame, data is None, proc.returncode, stderr)
    outcome.elapsed_s, outcome.returncode, outcome.stderr = elapsed, proc.returncode, stderr
    return outcome


async def _feed(stdin: asyncio.StreamWriter, payload: bytes) -> None:
    """Write the request; a child that died early simply does not read it."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        stdin.write(payload)
        await stdin.drain()
        stdin.close()


def _judge(run: _Run, frame: dict[str, Any] | None, overflow: bool, rc: int | None, stderr: str) -> SandboxOutcome:
    """Turn the exit status and the frame into an SandboxOutcome; the parent's own observations win."""
    limits = run.limits
    console = list(run.lines)
    dropped = run.extra_lines
    layers: list[str] | None = None
    limit_error = ""
    if frame is not None:
        console += [str(x) for x in frame.get("console") or []]  # JavaScript returns its console here
        dropped += int(frame.get("consoleDropped") or 0)
        report = frame.get("sandbox") or {}
        layers, limit_error = list(report.get("layers") or []), str(report.get("limitError") or "")
    out = SandboxOutcome("crashed", console=console_with_note(console[: limits.console_lines], dropped, limits),
                  layers=layers, limit_error=limit_error)
    memory_hint = any(s in stderr for s in ("MemoryError", "out of memory", "Cannot allocate memory"))
    if run.killed_for == "timeout" or rc == -signal.SIGXCPU:
        kind = "wall-clock" if run.killed_for == "timeout" else "CPU"
        out.status, out.error = "timeout", {"message": f"the script exceeded its {kind} time limit of "
                                                       f"{limits.timeout_s:g}s and was stopped"}
    elif run.killed_for == "memory" or (frame is None and memory_hint):
        out.status, out.error = "oom", {"message": f"the script exceeded its memory limit of {limits.memory_mb} MiB"}
    elif run.killed_for == "disk":
        out.status, out.error = "oom", {"message": f"the script's scratch directory exceeded {limits.memory_mb} "
                                                   f"MiB or {MAX_SCRATCH_ENTRIES} entries"}
    elif overflow:
        out.status, out.error = "too_large", {"size": None}
    elif frame is not None and frame.get("status") in ("ok", "raised", "syntax", "invalid", "too_large", "oom",
                                                       "crashed"):
        out.status = str(frame["status"])
        out.value = frame.get("value")
        out.error = {k: v for k, v in frame.items() if k not in ("status", "value", "console", "sandbox")}
    elif rc == -signal.SIGKILL:  # not ours: the kernel's OOM killer, or the hard CPU limit
        out.status, out.error = "oom", {"message": "the script process was killed by the system (out of memory?)"}
    else:
        how = f"signal {-rc}" if rc is not None and rc < 0 else f"exit status {rc}"
        out.error = {"message": f"the script process ended ({how}) without a result"}
    return out

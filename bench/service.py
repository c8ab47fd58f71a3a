"""Runs ``dev.demo_service.DemoService`` in its own process for the benchmark.

The benchmark's HTTP peer stands for an outside API: in a separate process it neither shares the GIL with
the worker being measured nor counts in the worker's memory. Prints ``PORT <n>`` once listening and stops
when its standard input closes (so it never outlives the benchmark).
"""

from __future__ import annotations

import sys

from flowtide.dev.demo_service import DemoService


def main() -> None:
    """Serve until stdin reaches end of file."""
    service = DemoService()
    service.start()
    print(f"PORT {service.port}", flush=True)
    sys.stdin.read()
    service.stop()


if __name__ == "__main__":
    main()

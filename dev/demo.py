"""``flowtide demo``: run ``examples/demo.yaml`` against a local service that answers 200/404/429/500 on purpose."""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from flowtide.dev.demo_service import DemoService

DEMO_FLOW = Path(__file__).resolve().parents[1] / "examples" / "demo.yaml"


async def run_demo(*, json_out: bool, execute: Callable[..., Awaitable[int]], tq: str) -> int:
    """Start the local service, allow the worker to reach it, run the demo flow, explain the result."""
    if not DEMO_FLOW.is_file():
        print(f"flowtide demo: {DEMO_FLOW} is missing (run from a clone of the repository)", file=sys.stderr)
        return 2
    allow = os.environ.get("FLOWTIDE_HTTP_ALLOW", "")
    os.environ["FLOWTIDE_HTTP_ALLOW"] = ",".join(x for x in (allow, "127.0.0.1") if x)
    with DemoService() as service:
        print(f"Demo service on {service.url} (answers 200, 404, 429 and 500 on purpose)", file=sys.stderr)
        payload: dict[str, Any] = {"baseUrl": service.url, "customerId": "7"}
        code = await execute(str(DEMO_FLOW), payload, json_out=json_out, worker=True, tq=tq)
        calls = dict(service.calls)
    if not json_out:
        print("\nWhat happened: 'reserve-stock' failed once and was retried by Temporal; "
              "'optional-enrichment' got a 404 that continueOnError absorbed; 'charge' got a 500 on a POST, "
              "which is not retried, so the run failed there: that is its first failed step.")
        print(f"Calls the service received: {calls}")
        print("See the run in the Web UI: http://127.0.0.1:8233 (while `flowtide server` or `flowtide dev` runs)")
    # The demo is meant to end in a failed run; the demo itself succeeded when the run got that far.
    return 0 if code in (0, 1) else code

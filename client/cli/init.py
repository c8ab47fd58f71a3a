"""``flowtide init NAME``: a starter project that validates and runs as written against ``flowtide dev``.

    NAME/
      flows/hello.yaml   the README's first flow (examples/hello.yaml): it calls the demo service of flowtide dev
      worker.py          Flowtide's worker inside your own worker process (for users who embed it)
      flows/hello.test.yaml  its test cases: mocked steps, virtual time (flowtide test flows/)
      tests/test_flows.py  every flow of flows/ validates (pytest)
      README.md          what to run, in order
"""

from __future__ import annotations

import argparse
from pathlib import Path

from flowtide.client.cli.common import EXIT_OK, UsageError
from flowtide.client.examples import example

WORKER = '''\
"""Flowtide's worker in your own process, next to your own Temporal workers (see Flowtide's docs/python-api.md).

Run it instead of `flowtide dev`'s worker: see README.md.
"""

import asyncio
import os

from temporalio.client import Client

import flowtide


async def main() -> None:
    client = await Client.connect(os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233"))
    async with flowtide.create_worker(client, task_queue=os.environ.get("FLOWTIDE_TASK_QUEUE", "flowtide")):
        print("worker polling the task queue; Ctrl-C stops it")
        await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
'''

TEST = '''\
"""Every flow of flows/ validates: run with `pytest`."""

from pathlib import Path

import pytest

import flowtide

FLOWS = sorted(p for p in (Path(__file__).resolve().parents[1] / "flows").glob("*.y*ml") if ".test." not in p.name)


@pytest.mark.parametrize("flow", FLOWS, ids=lambda p: p.name)
def test_the_flow_validates(flow: Path) -> None:
    assert flowtide.validate(flow) == []
'''

README = '''\
# {name}

Flows for Flowtide: durable JSON/YAML workflows on Temporal.

```bash
# once, in Flowtide's checkout: pip install -e ".[test]"  (`flowtide test` and pytest)
flowtide dev                                   # terminal 1: Temporal, the Web UI (http://127.0.0.1:8233),
                                               # a worker and the demo service the flow calls; Ctrl-C stops
flowtide validate flows/*.yaml                 # terminal 2: every problem, with its line and column
flowtide run flows/hello.yaml --input '{{"customerId": "7"}}' --no-worker
flowtide test flows/                           # the flows' test cases (*.test.yaml): mocked steps, virtual time
pytest                                         # tests/test_flows.py: every flow validates
```

- `flows/`: your flows. `flowtide schema > flow.schema.json` gives editors completion for them.
- `worker.py`: Flowtide's worker inside your own worker process, instead of `flowtide dev`'s: run
  `flowtide dev --task-queue unused` (its worker then leaves the `flowtide` queue to yours) and
  `FLOWTIDE_HTTP_ALLOW=127.0.0.1 python worker.py` (its HTTP steps may then call the demo service on this
  machine), then `flowtide run ... --no-worker` as above.
- `tests/`: the flows' tests.
'''


def cmd_init(args: argparse.Namespace) -> int:
    root = Path(args.name)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise UsageError(f"{root} already exists and is not an empty directory: give a new name")
    name = root.resolve().name
    files = {
        "flows/hello.yaml": example("hello").read_text(encoding="utf-8"),
        "flows/hello.test.yaml": example("hello.test").read_text(encoding="utf-8").replace("examples/", "flows/"),
        "worker.py": WORKER,
        "tests/test_flows.py": TEST,
        "README.md": README.format(name=name),
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    if args.json:
        import json
        print(json.dumps({"project": str(root), "files": sorted(files)}, indent=2))
        return EXIT_OK
    print(f"Created {root}/ with " + ", ".join(sorted(files)) + ".")
    print(f"Next: flowtide dev (in another terminal), then\n  cd {root} && flowtide run flows/hello.yaml "
          "--input '{\"customerId\": \"7\"}' --no-worker")
    return EXIT_OK

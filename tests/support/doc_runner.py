"""Run every fenced example of README.md and docs/ as written, against one local stack, with no network.

``python -m tests.support.doc_runner RESULTS.json`` runs inside a network namespace of its own (``unshare -n``,
started by ``tests/e2e/test_doc_examples_run.py``): only its own loopback exists, so the stack listens on the
documented default ports (Temporal 127.0.0.1:7233, API 8088, demo service 8089) and nothing can reach the
internet. In a fresh folder holding a link to ``examples/`` it starts ``flowtide dev`` as a reader would, then:

- runs the shell blocks (bash, sh, the ``$ `` lines of console blocks) and the python blocks (``python -``) of
  each page in order, in one bash session per page, so a variable one block sets (``KEY=$(...)``) is there
  for the next; a command that fails fails its block unless its line says so (``# ... exit 1``);
- answers ``flowtide dev|server|serve|worker`` (the stack, already running) with one line instead of a second
  copy of it;
- validates every YAML or JSON flow block (a document, a list of steps, one step) with one ``flowtide
  validate``.

It writes ``{"<page>:<line> (<lang>)": {"ok": bool, "why": str}}`` to RESULTS.json.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.unit.test_doc_examples import CHECKED, Block, flow_document

ROOT = Path(__file__).resolve().parents[2]
SHELL = ("bash", "sh", "console")
STACK = ("dev", "server", "serve", "worker")  # what `flowtide dev` runs: answered, not started again
SHIM = f"""#!/bin/sh
case "$1" in {'|'.join(STACK)})
  echo "flowtide $1: already running (the examples' stack)" >&2; exit 0;;
esac
exec "{sys.executable}" -m flowtide.client.cli.main "$@"
"""
FAIL = "__DOC_FAIL__"
# the reader's own credentials, which a page names as variables it expects ("an environment variable of yours")
READER_ENV = {"GITHUB_TOKEN": "ghp_example", "LEGACY_PASSWORD": "example-password", "BILLING_KEY": "bk_example",
              "NEW_GITHUB_TOKEN": "ghp_example2"}
PAGE_TIMEOUT = 120


def loopback_up() -> None:
    """Bring ``lo`` up: a new network namespace starts with it down."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack("16sH", fcntl.ioctl(s, 0x8913, struct.pack("16sH22x", b"lo", 0))[:18])[1]
        fcntl.ioctl(s, 0x8914, struct.pack("16sH22x", b"lo", flags | 0x1))


def environment(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWTIDE_", "TEMPORAL_"))}
    env |= {"PATH": f"{work / 'bin'}:{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}",
            "PYTHONPATH": str(ROOT), "HOME": str(work), "NO_COLOR": "1", **READER_ENV}
    return env


def start_dev(work: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = (work / "dev.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "flowtide.client.cli.main", "dev"], cwd=work, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while "flowtide dev running" not in (work / "dev.log").read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"flowtide dev did not start:\n{(work / 'dev.log').read_text(errors='replace')}")
        time.sleep(0.2)
    return proc


def page_script(blocks: list[Block]) -> tuple[str, list[tuple[Block, str]]]:
    """One bash script for a page's blocks; for each script line, its block and the line as the doc has it."""
    lines = [f"trap 'echo \"{FAIL} $LINENO $?\" >&2' ERR"]
    where: list[tuple[Block, str]] = [(blocks[0], "")]
    for block in blocks:
        body = block.text.splitlines()
        if block.lang == "console":
            body = [line[2:] if line.startswith("$ ") else "" for line in body]
        if block.lang == "python":
            body = ["python - <<'__PYTHON__'", *body, "__PYTHON__"]
        lines.append(f"echo '--- {block}' >&2")
        where.append((block, ""))
        lines += body
        where += [(block, line) for line in body]
    return "\n".join(lines) + "\n", where


def page_folder(work: Path, name: str) -> Path:
    """A folder of the page's own (a reader's clone: ``examples/``) sharing the stack's ``.flowtide/``."""
    folder = work / "pages" / re.sub(r"\W", "-", name)
    folder.mkdir(parents=True)
    (folder / "examples").symlink_to(ROOT / "examples")
    (folder / ".flowtide").symlink_to(work / ".flowtide")
    return folder


def run_page(blocks: list[Block], work: Path, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    script, where = page_script(blocks)
    folder = page_folder(work, blocks[0].page)
    out_file, err_file = folder / "page.out", folder / "page.err"
    with out_file.open("w") as out_f, err_file.open("w") as err_f:
        # a session of its own: what a block leaves running in the background ends with the page
        proc = subprocess.Popen(["bash", "-c", script], cwd=folder, env=env, stdout=out_f, stderr=err_f,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            proc.wait(PAGE_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    stderr = err_file.read_text(errors="replace")
    out = out_file.read_text(errors="replace") + stderr
    print(f"doc_runner: {blocks[0].page}: exit {proc.returncode}", file=sys.stderr, flush=True)
    if proc.returncode < 0:
        return {str(b): {"ok": False, "why": f"the page's blocks did not end in {PAGE_TIMEOUT} s:\n{out[-3000:]}"}
                for b in blocks}
    results = {str(b): {"ok": True, "why": ""} for b in blocks}
    for m in re.finditer(rf"^{FAIL} (\d+) (\d+)$", stderr, re.M):
        line, code = int(m.group(1)), m.group(2)
        block, text = where[line - 1]
        command = "\n".join(t for b, t in where[max(0, line - 4):line] if b is block)
        if re.search(rf"#.*\bexit {code}\b", command):
            continue  # a failure the doc announces
        results[str(block)] = {"ok": False, "why": f"`{text.strip()}` exited {code}:\n{_section(out, block)}"}
    return results


def _section(out: str, block: Block) -> str:
    """What the page printed while ``block`` ran."""
    start = out.find(f"--- {block}")
    end = out.find("--- ", start + 4)
    return out[start:end if end > 0 else None][-4000:]


def validate_flows(blocks: list[Block], work: Path, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    files = {}
    for i, block in enumerate(blocks):
        doc = flow_document(block)
        if doc is None:
            results[str(block)] = {"ok": True, "why": "data, not a flow (parsed by tests/unit/test_doc_examples.py)"}
            continue
        path = work / "doc-flows" / f"block-{i}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(doc))
        files[str(path.relative_to(work))] = block
    done = subprocess.run(["flowtide", "validate", *files], cwd=work, env=env, capture_output=True, text=True,
                          timeout=120)
    said = done.stdout + done.stderr
    for name, block in files.items():
        ok = f"{name}: ok" in said
        results[str(block)] = {"ok": ok, "why": "" if ok else
                               "\n".join(line for line in said.splitlines() if line.startswith(name))}
    return results


def main(out_file: str, only: str | None = None) -> int:
    """Run the blocks (``only``: the pages whose path contains it, for a quick look) into ``out_file``."""
    loopback_up()
    work = Path(tempfile.mkdtemp(prefix="flowtide-docs-"))
    (work / "examples").symlink_to(ROOT / "examples")
    (work / "bin").mkdir()
    (work / "bin" / "flowtide").write_text(SHIM)
    (work / "bin" / "flowtide").chmod(0o755)
    env = environment(work)
    dev = start_dev(work, env)
    results: dict[str, dict[str, Any]] = {}
    try:
        pages: dict[str, list[Block]] = {}
        for block in CHECKED:
            if block.lang in (*SHELL, "python") and (only is None or only in block.page):
                pages.setdefault(block.page, []).append(block)
        flows = [b for b in CHECKED if b.lang in ("yaml", "json")]
        with ThreadPoolExecutor(4) as pool:  # the pages are independent: each in its own folder
            done = [pool.submit(run_page, blocks, work, env) for blocks in pages.values()]
            done.append(pool.submit(validate_flows, flows, work, env))
            for future in done:
                results |= future.result()
    finally:
        dev.send_signal(signal.SIGINT)
        try:
            dev.wait(60)
        except subprocess.TimeoutExpired:
            dev.kill()
        shutil.rmtree(work, ignore_errors=True)
    Path(out_file).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))

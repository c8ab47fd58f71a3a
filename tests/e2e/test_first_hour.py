"""The README's first hour as a new user lives it: ``flowtide dev`` in one terminal, then the tour's commands in
another, against the demo service it serves, with nothing from the internet."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from flowtide.dev.server import free_port
from tests.support.cli import flowtide_process as flowtide

ROOT = Path(__file__).resolve().parents[2]
HELLO = "examples/hello.yaml"  # as the README writes it (the commands run from the repository's root)


async def _start_dev(tmp_path: Path, demo: int) -> tuple[asyncio.subprocess.Process, str, list[str]]:
    """``flowtide dev`` on free ports; returns the process, its Temporal address and its start-up lines."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("TEMPORAL_ADDRESS", "FLOWTIDE_HTTP_ALLOW")}
    env["FLOWTIDE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'api.db'}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flowtide.client.cli.main", "dev", "--port", str(port), "--ui-port", str(free_port()),
        "--api-port", str(free_port()), "--demo-port", str(demo), "--db-file", str(tmp_path / "t.db"),
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    lines: list[str] = []
    assert proc.stderr is not None
    while not any("flowtide dev running" in line for line in lines):
        line = (await asyncio.wait_for(proc.stderr.readline(), 60)).decode()
        assert line, f"flowtide dev ended: {''.join(lines)}"
        lines.append(line)
    return proc, f"127.0.0.1:{port}", lines


async def test_the_readme_tour_runs_against_flowtide_dev(tmp_path: Path) -> None:
    demo = free_port()
    proc, address, lines = await _start_dev(tmp_path, demo)
    try:
        # quiet: where things are, not how they were set up (migrations only with --verbose)
        assert not [line for line in lines if "alembic" in line], lines
        assert len(lines) <= 4, lines
        assert f"http://127.0.0.1:{demo}" in lines[-1]
        env = {"TEMPORAL_ADDRESS": address}
        code, out, err = await flowtide("validate", HELLO, env=env)
        assert code == 0, err
        # hello.yaml calls http://127.0.0.1:8089 by default; this test's dev serves another port (8089 may be
        # taken on a shared machine), so the input names it, as the flow's comment says
        base = f"http://127.0.0.1:{demo}"
        code, out, err = await flowtide("run", HELLO, "--input", json.dumps({"customerId": "7", "baseUrl": base}),
                                        "--no-worker", "--json", env=env)
        assert code == 0, err
        assert json.loads(out)["output"] == {"message": "Hello Customer 7"}
        code, out, err = await flowtide("run", HELLO, "--input", json.dumps({"customerId": "404", "baseUrl": base}),
                                        "--no-worker", env=env)
        assert code == 1, err
        assert "HTTP_CLIENT_ERROR" in out and "Traceback" not in out + err
        # `flowtide init`: the starter project's flow validates and runs as written; its test passes
        project = tmp_path / "acme"
        code, out, err = await flowtide("init", str(project))
        assert code == 0, err
        assert sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()) == [
            "README.md", "flows/hello.test.yaml", "flows/hello.yaml", "tests/test_flows.py", "worker.py"]
        code, out, err = await flowtide("test", str(project / "flows"))  # its test cases pass as written
        assert code == 0 and "3 passed, 0 failed" in out, out + err
        code, out, err = await flowtide("run", str(project / "flows" / "hello.yaml"), "--input",
                                        json.dumps({"customerId": "8", "baseUrl": base}), "--no-worker", "--json",
                                        env=env)
        assert code == 0 and json.loads(out)["output"] == {"message": "Hello Customer 8"}, err
        tested = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project / "tests"), cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        report = (await asyncio.wait_for(tested.communicate(), 120))[0].decode()
        assert tested.returncode == 0 and "1 passed" in report, report
        compile((project / "worker.py").read_text(), "worker.py", "exec")
        code, _, err = await flowtide("init", str(project))
        assert code == 2 and "already exists" in err
        for _ in range(50):  # -o jsonl: one run per line (visibility is eventually consistent)
            code, out, err = await flowtide("runs", "list", "-o", "jsonl", env=env)
            if code == 0 and len(out.splitlines()) == 3:
                break
            await asyncio.sleep(0.2)
        assert code == 0 and sorted(json.loads(line)["status"] for line in out.splitlines()) == [
            "completed", "completed", "failed"], out
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 60)
    assert proc.returncode == 0


async def test_a_taken_demo_port_is_one_clear_line_before_anything_starts() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        code, _, err = await flowtide("dev", "--demo-port", str(port), "--port", str(free_port()), timeout=60)
    assert code == 2, err
    assert f"port {port}" in err and "--demo-port" in err and "Traceback" not in err


async def test_an_unreachable_server_says_what_and_where_without_transport_text() -> None:
    port = free_port()  # nothing listens there
    code, _, err = await flowtide("runs", "list", env={"TEMPORAL_ADDRESS": f"127.0.0.1:{port}"}, timeout=60)
    assert code == 3, err
    assert err.strip() == (f"flowtide: cannot reach Temporal at 127.0.0.1:{port}: nothing is listening there "
                           "(connection refused). Start one with `flowtide server` or set --address / "
                           "TEMPORAL_ADDRESS"), err
    code, _, err = await flowtide("runs", "list", env={"TEMPORAL_ADDRESS": f"127.0.0.1:{port}", "FLOWTIDE_DEBUG": "1"},
                                  timeout=60)
    assert "tcp connect error" in err  # the transport's own words, for whoever debugs


async def test_not_found_has_its_own_exit_code() -> None:
    code, out, err = await flowtide("examples", "nope", "--json")
    assert code == 4 and json.loads(out)["error"]["code"] == "NOT_FOUND", (out, err)
    code, out, _ = await flowtide("examples", "greet")
    assert code == 0 and out.strip().endswith("examples/greet.yaml")


async def test_every_command_that_prints_data_takes_an_output_format() -> None:
    code, out, _ = await flowtide("codes", "-o", "jsonl")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) > 50 and all("code" in r for r in rows)
    code, out, _ = await flowtide("codes", "-o", "json")
    assert code == 0 and len(json.loads(out)) == len(rows)
    code, out, _ = await flowtide("codes", "--json", "-o", "table")
    assert code == 0 and out.startswith("CODE")
    code, out, _ = await flowtide("runs", "export", "--help")  # its -o is still the file
    assert "file (default: standard output)" in out
    from flowtide.client.cli.main import build_parser
    leaves = []

    def walk(parser: Any, path: tuple[str, ...]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(child, (*path, name))
        if not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions):
            leaves.append((path, {s for a in parser._actions for s in a.option_strings}))
    walk(build_parser(), ())
    assert [p for p, flags in leaves if not {"--json", "-o"} <= flags] == []

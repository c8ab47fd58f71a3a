"""Validation problems point at the source: the line and column of their JSON path in a YAML or JSON file, and a
YAML syntax error at the line where the construct opens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flowtide.client.cli.main import main
from flowtide.workflows.errors import FlowValidationError, Problem
from flowtide.workflows.language import load_flow_text
from flowtide.workflows.language.dsl.locate import locate

YAML = """\
id: x
steps:
  - stepId: a
    stepType: core.htp
    input: {url: "http://x"}
  - stepId: b
    type: core.return
"""


def _problems(text: str, source: str) -> list[Problem]:
    with pytest.raises(FlowValidationError) as err:
        load_flow_text(text, source)
    return err.value.problems


def test_yaml_problems_carry_the_line_and_column_of_their_path() -> None:
    where = {p.path: (p.line, p.column) for p in _problems(YAML, "f.yaml")}
    assert where["steps[0].stepType"] == (4, 5)
    assert where["steps[1].type"] == (7, 5)
    assert where["steps[1]"] == (6, 5)  # a missing key: the step that lacks it


def test_json_and_a_bare_list_of_steps_too() -> None:
    text = '{"id": "x", "steps": [\n  {"stepId": "a",\n   "stepType": "core.htp"}]}\n'
    assert [(p.path, p.line, p.column) for p in _problems(text, "f.json")] == [("steps[0].stepType", 3, 4)]
    bare = "- stepId: a\n  stepType: core.return\n- stepId: b\n  stepType: core.nope\n"
    assert [(p.line, p.column) for p in _problems(bare, "f.yaml")] == [(4, 3)]


def test_a_yaml_syntax_error_names_the_line_where_the_construct_opens() -> None:
    text = "id: x\nsteps:\n  - stepId: a\n    stepType: core.return\n    input: {output: [1, 2\n  - stepId: b\n"
    (problem,) = _problems(text, "f.yaml")
    assert (problem.line, problem.column) == (5, 21)  # the "[" that is never closed
    assert problem.message.startswith("invalid YAML at line 5 column 21: parsing a flow sequence, which opens here; "
                                      "at line 6 column 11: "), problem.message


def test_paths_not_in_the_text_stay_without_a_place() -> None:
    problems = [Problem("$.customerId", "required"), Problem("", "the document is empty")]
    assert locate(problems, YAML) == problems
    assert locate([Problem("steps[0]", "x")], "{not: [yaml") == [Problem("steps[0]", "x")]


def test_each_problem_of_a_file_gives_its_line_and_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    flow = tmp_path / "f.yaml"
    flow.write_text(YAML)
    assert main(["validate", str(flow)]) == 2
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{flow}:4:5: error: steps[0].stepType: unknown step kind 'core.htp' (did you mean 'core.http'?)"
    assert main(["validate", str(flow), "--json"]) == 2
    problem = json.loads(capsys.readouterr().out)[0]["problems"][0]
    assert (problem["path"], problem["line"], problem["column"]) == ("steps[0].stepType", 4, 5)

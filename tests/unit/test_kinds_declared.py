"""The kind declarations (``workflows/kinds.py``) against everything that depends on them: implementations,
retry families, the taxonomy, the validator's literal checks and the input tables of ``docs/steps.md``."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from flowtide.activities import all_activities
from flowtide.workflows.engine._workflow_kinds import WORKFLOW_KINDS
from flowtide.workflows.errors import TAXONOMY
from flowtide.workflows.kinds import ENGINE_CODES, KINDS, Kind
from flowtide.workflows.language.dsl.inputs import LITERAL_CHECKS
from flowtide.workflows.language.pure import PURE
from flowtide.workflows.retry import FAMILY_DEFAULTS

ROOT = Path(__file__).resolve().parents[2]
UNUSED_CODES = {"HTTP_NOT_FOUND", "STORAGE_RATE_LIMITED", "RETURN"}  # see docs/error-handling.md; RETURN: internal


def families_without_defaults(kinds: Iterable[Kind]) -> set[str]:
    """Families used by ``kinds`` that have no row of retry defaults (they would silently get Core's)."""
    return {k.family for k in kinds} - set(FAMILY_DEFAULTS)


def test_every_family_has_retry_defaults() -> None:
    assert families_without_defaults(KINDS.values()) == set()


def test_a_family_without_retry_defaults_is_caught() -> None:
    fake = [*KINDS.values(), replace(KINDS["core.http"], name="queue.publish", family="Queue")]
    assert families_without_defaults(fake) == {"Queue"}


def test_every_activity_kind_has_exactly_one_registered_activity_and_back() -> None:
    registered = Counter(fn.__temporal_activity_definition.name for fn in all_activities())  # type: ignore[attr-defined]
    assert registered == Counter(k.name for k in KINDS.values() if k.runs == "activity")


def test_workflow_kinds_have_an_implementation_in_the_workflow() -> None:
    for kind in KINDS.values():
        if kind.runs == "workflow":
            assert (kind.name in PURE) != (kind.name in WORKFLOW_KINDS), kind.name
        elif kind.runs == "child":
            assert kind.name in WORKFLOW_KINDS and kind.name not in PURE, kind.name
    assert set(PURE) | set(WORKFLOW_KINDS) == {k.name for k in KINDS.values() if k.runs != "activity"}


def test_declared_error_codes_are_taxonomy_codes() -> None:
    for kind in KINDS.values():
        assert set(kind.errors) <= set(TAXONOMY), kind.name
        assert len(set(kind.errors)) == len(kind.errors), kind.name
    assert set(ENGINE_CODES) <= set(TAXONOMY)
    used = set(ENGINE_CODES).union(*(k.errors for k in KINDS.values()))
    assert set(TAXONOMY) - used == UNUSED_CODES


def test_an_activity_module_raises_only_its_kinds_codes() -> None:
    """A code written in an activity module is declared by a kind that module implements."""
    for path in sorted((ROOT / "activities").glob("[!_]*.py")):
        text = path.read_text(encoding="utf-8")
        names = re.findall(r'@step_activity\("([\w.-]+)"', text)
        if not names:
            continue
        declared = set(ENGINE_CODES).union(*(KINDS[n].errors for n in names))
        written = {c for c in re.findall(r'"([A-Z][A-Z_]+)"', text) if c in TAXONOMY}
        assert written - declared == set(), path.name


def test_input_declarations_are_consistent() -> None:
    for kind in KINDS.values():
        names = kind.inputs.names
        assert len(names) == len(kind.inputs.keys), kind.name  # no key twice
        assert all(set(group) <= names for group in kind.inputs.required), kind.name
        assert set(kind.blocks) <= names, kind.name
        assert all(text and "\n" not in text for _, text in kind.inputs.keys), kind.name
    for kind_name, key in LITERAL_CHECKS:
        assert key in KINDS[kind_name].inputs.names, (kind_name, key)


# ---- docs/steps.md ---------------------------------------------------------------------------------------
def input_tables(text: str, kinds: dict[str, Kind]) -> dict[str, dict[str, str]]:
    """``{kind: {key: default column}}`` of the input tables in the one-kind sections (``##``/``###``)."""
    out = {}
    for section in re.split(r"^###? ", text, flags=re.M)[1:]:
        heading, _, body = section.partition("\n")
        named = [k for k in re.findall(r"[\w.-]+", heading) if k in kinds]
        if len(named) != 1 or "| input |" not in body:
            continue
        rows = re.findall(r"^\| (`.*?) \| .*? \| (.*?) \|", body[body.index("| input |"):], flags=re.M)
        out[named[0]] = {key: default for cell, default in rows for key in re.findall(r"`(\w+)`", cell)}
    return out


def table_disagreements(text: str, kinds: dict[str, Kind]) -> list[str]:
    """Where an input table of ``text`` differs from its kind's declaration: keys missing or extra, or a
    required key whose row does not say so."""
    out = []
    for name, documented in input_tables(text, kinds).items():
        kind = kinds[name]
        for key in sorted(kind.inputs.names - set(documented)):
            out.append(f"{name}: `{key}` is declared but not in the table")
        for key in sorted(set(documented) - kind.inputs.names):
            out.append(f"{name}: `{key}` is in the table but not declared")
        for key in sorted({k for group in kind.inputs.required for k in group} & set(documented)):
            if "required" not in documented[key] and "at least one" not in documented[key]:
                out.append(f"{name}: `{key}` is required but its row does not say so")
    return out


STEPS_MD = (ROOT / "docs" / "steps.md").read_text(encoding="utf-8")


def test_the_input_tables_of_the_step_reference_match_the_declarations() -> None:
    assert table_disagreements(STEPS_MD, KINDS) == []
    assert set(input_tables(STEPS_MD, KINDS)) == set(KINDS)  # every kind: activities, control and data kinds


def kind_sections(text: str, kinds: dict[str, Kind]) -> dict[str, str]:
    """``{kind: its section's text}`` for the one-kind sections (``##``/``###``)."""
    out = {}
    for section in re.split(r"^###? ", text, flags=re.M)[1:]:
        heading, _, body = section.partition("\n")
        named = [k for k in re.findall(r"[\w.-]+", heading) if k in kinds]
        if len(named) == 1:
            out[named[0]] = body
    return out


def test_every_kind_section_says_its_output_and_errors_and_shows_an_example() -> None:
    lacking = {}
    for name, body in kind_sections(STEPS_MD, KINDS).items():
        checks = (("an Output line", "Output" in body),
                  ("its errors", "Errors" in body or any(f"`{code}`" in body for code in KINDS[name].errors)),
                  ("an example", "```yaml" in body or "```json" in body))
        lacking[name] = [what for what, found in checks if not found]
    assert {name: what for name, what in lacking.items() if what} == {}
    assert set(lacking) == set(KINDS)


def test_a_table_that_disagrees_is_caught() -> None:
    dropped = STEPS_MD.replace("| `maxRows` | int | 10000 |", "| `maxRowz` | int | 10000 |")
    assert table_disagreements(dropped, KINDS) == ["datastore.query: `maxRows` is declared but not in the table",
                                                   "datastore.query: `maxRowz` is in the table but not declared"]
    strict = {**KINDS, "llm.chat": replace(KINDS["llm.chat"], inputs=replace(KINDS["llm.chat"].inputs,
                                                                             required=(("model", "apiKey"),)))}
    assert table_disagreements(STEPS_MD, strict) == ["llm.chat: `apiKey` is required but its row does not say so"]

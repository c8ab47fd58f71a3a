"""Templates: paths, native types, text rendering, every filter, strict mode, secrets, hostile input."""

from __future__ import annotations

from typing import Any

import pytest

from flowtide.workflows.errors import TemplateError
from flowtide.workflows.language.templates import check_syntax, find_templates, references, render
from flowtide.workflows.language.templates.filters import FILTERS

SCOPE: dict[str, Any] = {
    "initial": {"name": "ada", "items": [{"id": 1, "ok": True, "tag": "b"}, {"id": 2, "ok": False, "tag": "a"},
                                         {"id": 3, "ok": True, "tag": "b"}],
                "n": 7, "f": 2.5, "text": "  Hello World  ", "when": "2024-03-05T10:20:30Z", "epoch": 1700000000,
                "x": {"a-b": 5, "0": "zero"}, "nums": [3, 1, 2], "empty": "", "nested": {"list": [[1, 2], [3]]}},
    "fetch-customer": {"status": 404, "body": {"message": "Customer not found"}, "output": {"status": 404},
                       "$meta": {"success": False, "operationalStatus": "error"}},
    "$errors": [{"code": "HTTP_CLIENT_ERROR", "stepId": "fetch-customer"}],
    "$item": {"id": 9},
    "$index": 1,
}


def r(text: str, **kw: Any) -> Any:
    return render(text, SCOPE, **kw)


# ---- paths and native types ------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "want"), [
    ("{{ fetch-customer.body.message }}", "Customer not found"),
    ("{{ fetch-customer.status }}", 404),
    ("{{ fetch-customer.$meta.success }}", False),
    ("{{ $errors[0].code }}", "HTTP_CLIENT_ERROR"),
    ("{{$errors[0].stepId}}", "fetch-customer"),
    ("{{ initial.items[-1].id }}", 3),
    ("{{ initial.items.0.id }}", 1),
    ("{{ initial.x[\"a-b\"] }}", 5),
    ("{{ initial.x['0'] }}", "zero"),
    ("{{ initial.x[0] }}", "zero"),
    ("{{ initial.items[$index].id }}", 2),
    ("{{ initial.items.size }}", 3),
    ("{{ initial.items.first.id }}", 1),
    ("{{ initial.items.last.id }}", 3),
    ("{{ initial.nested.list[0][1] }}", 2),
    ("{{ $item.id }}", 9),
    ("{{ 'quoted' }}", "quoted"),
    ("{{ 42 }}", 42),
    ("{{ -1.5 }}", -1.5),
    ("{{ true }}", True),
    ("{{ null }}", None),
])
def test_paths(text: str, want: Any) -> None:
    assert r(text) == want


def test_single_template_keeps_native_type() -> None:
    assert r("{{ initial.items }}") == SCOPE["initial"]["items"]
    assert r("{{ initial.x }}") == SCOPE["initial"]["x"]


def test_mixed_text_renders_to_string() -> None:
    assert r("n={{ initial.n }} ok={{ fetch-customer.$meta.success }} none=[{{ initial.nope }}]") == \
        "n=7 ok=false none=[]"
    assert r("list {{ initial.nums }} obj {{ initial.x }}") == 'list [3,1,2] obj {"a-b":5,"0":"zero"}'
    assert r(" {{ initial.n }}") == " 7"


def test_deep_render_of_dicts_and_lists_keeps_keys_and_other_values() -> None:
    value = {"url": "http://x/{{ initial.name }}", "n": ["{{ initial.n }}", 1, None, True],
             "{{ key }}": {"deep": "{{ $errors | size }}"}}
    assert render(value, SCOPE) == {"url": "http://x/ada", "n": [7, 1, None, True], "{{ key }}": {"deep": 1}}


def test_hyphen_ids_are_paths_never_subtraction() -> None:
    scope = {"a-b": {"c": 1}, "a": 10, "b": 3}
    assert render("{{ a-b.c }}", scope) == 1
    assert render("{{ a-b }}", scope) == {"c": 1}


def test_missing_paths_are_null_or_empty_text() -> None:
    assert r("{{ nope.deeper.still }}") is None
    assert r("{{ initial.items[10] }}") is None
    assert r("{{ initial.n.x }}") is None
    assert r("a{{ nope }}b") == "ab"


def test_strict_mode_names_the_missing_path() -> None:
    with pytest.raises(TemplateError, match=r"initial\.nope\.deep"):
        r("{{ initial.nope.deep }}", strict=True)
    with pytest.raises(TemplateError, match="missing"):
        r("x {{ initial.n | plus: other.value }}", strict=True)
    assert r("{{ initial.nope | default: 'x' }}", strict=True) == "x"
    assert r("{{ initial.n }}", strict=True) == 7


def test_secrets_are_left_verbatim() -> None:
    assert r("{{ secrets.API_KEY }}") == "{{ secrets.API_KEY }}"
    assert r("Bearer {{secrets.API_KEY}} for {{ initial.name }}") == "Bearer {{secrets.API_KEY}} for ada"
    assert render({"h": {"Authorization": "Bearer {{ secrets.T }}"}}, {}, strict=True) == \
        {"h": {"Authorization": "Bearer {{ secrets.T }}"}}


# ---- filters: one case per filter -------------------------------------------------------------------
FILTER_CASES: dict[str, list[tuple[str, Any]]] = {
    "size": [("{{ initial.items | size }}", 3), ("{{ initial.name | size }}", 3), ("{{ nope | size }}", 0)],
    "default": [("{{ nope | default: 'anon' }}", "anon"), ("{{ initial.empty | default: 1 }}", 1),
                ("{{ initial.n | default: 1 }}", 7), ("{{ fetch-customer.$meta.success | default: 'f' }}", "f")],
    "json": [("{{ initial.nums | json }}", "[3,1,2]"), ("{{ initial.name | json }}", '"ada"')],
    "upcase": [("{{ initial.name | upcase }}", "ADA")],
    "downcase": [("{{ 'AbC' | downcase }}", "abc")],
    "capitalize": [("{{ 'hELLO' | capitalize }}", "Hello")],
    "strip": [("{{ initial.text | strip }}", "Hello World")],
    "lstrip": [("{{ initial.text | lstrip }}", "Hello World  ")],
    "rstrip": [("{{ initial.text | rstrip }}", "  Hello World")],
    "append": [("{{ initial.name | append: '!' }}", "ada!")],
    "prepend": [("{{ initial.name | prepend: 'hi ' }}", "hi ada")],
    "replace": [("{{ 'a-b-c' | replace: '-', '+' }}", "a+b+c")],
    "replace_first": [("{{ 'a-b-c' | replace_first: '-', '+' }}", "a+b-c")],
    "remove": [("{{ 'a-b-c' | remove: '-' }}", "abc")],
    "url_encode": [("{{ 'a b&c/d' | url_encode }}", "a%20b%26c%2Fd")],
    "split": [("{{ 'a,b' | split: ',' }}", ["a", "b"]), ("{{ 'ab' | split: '' }}", ["a", "b"])],
    "truncate": [("{{ 'abcdefgh' | truncate: 5 }}", "ab..."), ("{{ 'abc' | truncate: 5 }}", "abc"),
                 ("{{ 'abcdefgh' | truncate: 4, '' }}", "abcd")],
    "first": [("{{ initial.nums | first }}", 3), ("{{ 'xyz' | first }}", "x")],
    "last": [("{{ initial.nums | last }}", 2)],
    "join": [("{{ initial.nums | join: ', ' }}", "3, 1, 2"), ("{{ initial.nums | join }}", "3 1 2")],
    "map": [("{{ initial.items | map: 'id' }}", [1, 2, 3])],
    "where": [("{{ initial.items | where: 'ok' | map: 'id' }}", [1, 3]),
              ("{{ initial.items | where: 'tag', 'a' | map: 'id' }}", [2])],
    "keys": [("{{ initial.x | keys }}", ["a-b", "0"])],
    "values": [("{{ initial.x | values }}", [5, "zero"])],
    "slice": [("{{ initial.nums | slice: 1, 2 }}", [1, 2]), ("{{ 'hello' | slice: -3, 2 }}", "ll")],
    "reverse": [("{{ initial.nums | reverse }}", [2, 1, 3]), ("{{ 'abc' | reverse }}", "cba")],
    "sort": [("{{ initial.nums | sort }}", [1, 2, 3]), ("{{ initial.items | sort: 'tag' | map: 'id' }}", [2, 1, 3])],
    "uniq": [("{{ initial.items | map: 'tag' | uniq }}", ["b", "a"])],
    "compact": [("{{ initial.items | map: 'nope' | compact }}", [])],
    "contains": [("{{ initial.nums | contains: 2 }}", True), ("{{ initial.name | contains: 'd' }}", True),
                 ("{{ initial.x | contains: 'zz' }}", False)],
    "round": [("{{ initial.f | round }}", 3), ("{{ 2.675 | round: 2 }}", 2.68), ("{{ 1234 | round: -2 }}", 1200)],
    "plus": [("{{ initial.n | plus: 3 }}", 10), ("{{ '2' | plus: 0.5 }}", 2.5)],
    "minus": [("{{ initial.n | minus: 10 }}", -3)],
    "times": [("{{ initial.n | times: 2 }}", 14)],
    "divided_by": [("{{ 20 | divided_by: 7 }}", 2), ("{{ 20 | divided_by: 8.0 }}", 2.5)],
    "modulo": [("{{ initial.n | modulo: 4 }}", 3)],
    "abs": [("{{ -4 | abs }}", 4)],
    "floor": [("{{ 2.7 | floor }}", 2)],
    "ceil": [("{{ 2.1 | ceil }}", 3)],
    "at_least": [("{{ 3 | at_least: 5 }}", 5)],
    "at_most": [("{{ 3 | at_most: 1 }}", 1)],
    "date": [("{{ initial.when | date: '%Y-%m-%d %H:%M' }}", "2024-03-05 10:20"),
             ("{{ initial.epoch | date: '%Y' }}", "2023"), ("{{ nope | date: '%Y' }}", None)],
    "to_number": [("{{ '12' | to_number }}", 12), ("{{ '1.5' | to_number }}", 1.5)],
    "int": [("{{ '7.9' | int }}", 7)],
    "float": [("{{ 3 | float }}", 3.0)],
    "string": [("{{ 3 | string }}", "3"), ("{{ true | string }}", "true")],
}


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_filter(name: str) -> None:
    assert name in FILTER_CASES, f"filter '{name}' has no test case"
    for text, want in FILTER_CASES[name]:
        got = r(text)
        assert got == want and type(got) is type(want), (text, got)


def test_filter_chain_and_path_arguments() -> None:
    assert r('{{ initial.nope | default: "anon" | upcase }}') == "ANON"
    assert r("{{ initial.n | plus: initial.n | times: $index }}") == 14


@pytest.mark.parametrize(("text", "message"), [
    ("{{ 1 | divided_by: 0 }}", "division by zero"),
    ("{{ 1 | modulo: 0 }}", "division by zero"),
    ("{{ 'abc' | plus: 1 }}", "expected a number"),
    ("{{ 'not a date' | date: '%Y' }}", "not an ISO date"),
    ("{{ 1e20 | date: '%Y' }}", "date: 1e\\+20 is not an ISO date"),  # beyond time_t: the filter's own message
    ("{{ initial.name | keys }}", "expected an object"),
    ("{{ 'x' | to_number }}", "expected a number"),
    ("{{ 1 | round: 999 }}", "digits"),
])
def test_filter_errors_are_template_errors(text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        r(text)


# ---- syntax -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "message"), [
    ("{{ x | nope }}", "unknown filter 'nope'"),
    ("{{ x | upcsae }}", "did you mean 'upcase'"),
    ("{{ 7*7 }}", "unexpected '\\*'"),
    ("{{ a - b }}", "unexpected '-'"),
    ("{{ x", "unclosed"),
    ("{{ }}", "empty expression"),
    ("{{ x | plus }}", "takes 1 argument"),
    ("{{ x | default: 'a }}", "unterminated string"),
    ("{{ x[ }}", "expected an index"),
    ("{{ x. }}", "expected a key"),
    ("{{ x | " + " | ".join(["size"] * 40) + " }}", "more than 32 filters"),
    ("{{ x }}" + "a" * 70_000, "longer than 65536"),
])
def test_syntax_errors(text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        render(text, {})
    assert check_syntax({"a": [text]}, "steps[0].input")[0].path == "steps[0].input.a[0]"


def test_literal_braces_through_a_string_expression() -> None:
    assert r("{{ '{{' }} not a template {{ '}}' }}") == "{{ not a template }}"


def test_find_templates_and_references() -> None:
    value = {"url": "http://x/{{ initial.id }}/{{ fetch-customer.body.id | default: $item.id }}",
             "headers": {"Content-Type": "{{ vars.ct }}"}, "plain": "no template", "list": ["{{ $errors[0] }}"]}
    assert find_templates(value, "steps[1].input") == [
        ("steps[1].input.url", "initial.id"), ("steps[1].input.url", "fetch-customer.body.id | default: $item.id"),
        ("steps[1].input.headers.Content-Type", "vars.ct"), ("steps[1].input.list[0]", "$errors[0]")]
    assert references(value) == {"initial", "fetch-customer", "$item", "vars", "$errors"}
    assert find_templates({"we ird": "{{ a }}"}) == [('["we ird"]', "a")]


# ---- hostile input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("payload", ["{{7*7}}", "${7*7}", "{{ secrets.API_KEY }}", "{% raw %}", "#{7*7}",
                                     "{{ __class__.__mro__ }}", "' or 1==1 --", "\x00\ud800"])
def test_data_is_never_evaluated_twice(payload: str) -> None:
    scope = {"initial": {"v": payload}}
    assert render("{{ initial.v }}", scope) == payload
    assert render("[{{ initial.v }}]", scope) == f"[{payload}]"


@pytest.mark.parametrize("text", ["{{ __class__ }}", "{{ x.__class__.__mro__ }}", "{{ x.__dict__ }}",
                                  "{{ initial.name.upper }}", "{{ initial.items.__len__ }}", "{{ __import__ }}",
                                  "{{ initial.name.__class__.__base__.__subclasses__ }}"])
def test_python_attributes_are_never_reached(text: str) -> None:
    assert r(text) is None


def test_scope_objects_are_not_walked_by_attribute() -> None:
    class Sneaky:
        secret = "leaked"

    assert render("{{ obj.secret }}", {"obj": Sneaky()}) is None


def test_only_template_errors_escape() -> None:
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(TemplateError):
        render(deep, {})
    with pytest.raises(TemplateError):
        render("{{ x | json }}", {"x": deep})
    assert render("{{ x | size }}", {"x": deep}) == 1


def test_datetime_format_and_the_date_filter_read_instants_alike() -> None:
    from datetime import UTC, datetime

    from flowtide.workflows.errors import StepFailure
    from flowtide.workflows.language.pure import datetime_format
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for value, year in ((0, "1970"), ("1700000000", "2023"), ("2024-03-05T10:20:00Z", "2024")):
        assert datetime_format({"value": value, "format": "%Y"}, now)["formatted"] == year
        assert render("{{ v | date: '%Y' }}", {"v": value}) == year
    # out of range, not a number, a boolean: a step failure (never an exception that fails the workflow task)
    for bad in (1e20, float("nan"), True, "tomorrow"):
        with pytest.raises(StepFailure, match="not an ISO date or epoch seconds"):
            datetime_format({"value": bad}, now)
        with pytest.raises(TemplateError, match="not an ISO date or epoch seconds"):
            render("{{ v | date: '%Y' }}", {"v": bad})

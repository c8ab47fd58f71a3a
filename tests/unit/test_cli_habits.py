"""CLI habits: help pages with example/environment/exit codes, completion scripts, clipped titles, colour only
on a terminal without NO_COLOR, and a ``--help`` that imports neither the Temporal SDK nor rich."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flowtide.client.cli.main import build_parser
from flowtide.client.cli.term import colour, console, styled
from flowtide.client.render import clip

ROOT = Path(__file__).resolve().parents[2]


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                grand = commands(child, (*path, name))
                out.extend(grand or [((*path, name), child)])
    return out


@pytest.mark.parametrize(("path", "sub"), commands(build_parser()), ids=lambda x: " ".join(x) if isinstance(x, tuple)
                         else "")
def test_every_command_help_has_an_example_and_exit_codes(path, sub) -> None:
    text = sub.format_help()
    assert "example:\n  flowtide " in text and "exit codes:" in text and "--json" in text, path
    if "--address" in text:
        assert "environment:" in text and "TEMPORAL_ADDRESS" in text, path


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flowtide.client.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **(env or {})}, timeout=60)


def test_completion_scripts_complete_commands_and_options(tmp_path) -> None:
    script = tmp_path / "flowtide.bash"
    script.write_text(run("completion", "bash").stdout)
    probe = (f"source {script}; COMP_WORDS=(flowtide sch); COMP_CWORD=1; _shtab_flowtide; echo \"${{COMPREPLY[@]}}\";"
             " COMP_WORDS=(flowtide schedule create x --ov); COMP_CWORD=4; _shtab_flowtide; echo \"${COMPREPLY[@]}\"")
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=30).stdout.split("\n")
    assert out[0].split() == ["schema", "schedule"] and out[1].strip() == "--overlap"
    assert "#compdef flowtide" in run("completion", "zsh").stdout
    fish = run("completion", "fish").stdout
    assert "-a schedule" in fish and "-l overlap" in fish and "-l tls-ca-path" in fish


def test_help_imports_neither_the_sdk_nor_rich() -> None:
    code = ("import sys\nfrom flowtide.client.cli import main\ntry:\n    main(['run', '--help'])\nexcept SystemExit:\n"
            "    pass\nprint(sorted({m.split('.')[0] for m in sys.modules} & {'temporalio', 'rich', 'pydantic'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_titles_are_cut_at_a_word_with_an_ellipsis() -> None:
    assert clip("Charge the card of the customer now", 20) == "Charge the card of…"
    assert clip("short", 20) == "short"
    assert clip("Supercalifragilisticexpialidocious", 10) == "Supercali…"
    assert len(clip("a" * 5 + " " + "b" * 30, 12)) <= 12


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch) -> None:
    master, slave = os.openpty()
    with os.fdopen(slave, "w") as tty:
        monkeypatch.delenv("NO_COLOR", raising=False)
        assert colour(tty)
        monkeypatch.setenv("NO_COLOR", "1")
        assert not colour(tty)
        monkeypatch.delenv("NO_COLOR")
        monkeypatch.setattr(sys, "stdout", tty)
        console().print(styled("Status: FAILED at HTTP_SERVER_ERROR"))
        tty.flush()
        assert b"\x1b[" in os.read(master, 4096)
    os.close(master)
    with open(os.devnull, "w") as pipe:
        assert not colour(pipe)

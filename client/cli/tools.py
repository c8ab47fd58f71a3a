"""``flowtide completion bash|zsh|fish``: shell completion scripts generated from the parser itself."""

from __future__ import annotations

import argparse
from typing import Any


def _fish(parser: argparse.ArgumentParser) -> str:
    """A fish script: subcommands (any depth), then each command's long options."""
    lines = ["complete -c flowtide -f"]

    def seen(path: list[str]) -> list[str]:
        return [f"__fish_seen_subcommand_from {w}" for w in path]

    def walk(p: argparse.ArgumentParser, path: list[str]) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {c.dest: c.help for c in action._choices_actions}
                cond = "; and ".join([*seen(path), "not __fish_seen_subcommand_from " + " ".join(action.choices)])
                for name, child in action.choices.items():
                    lines.append(f"complete -c flowtide -n {_q(cond)} -a {name} -d {_q(helps.get(name))}")
                    walk(child, [*path, name])
            elif path:
                for opt in (o for o in action.option_strings if o.startswith("--")):
                    lines.append(f"complete -c flowtide -n {_q('; and '.join(seen(path)))} -l {opt[2:]} "
                                 f"-d {_q(action.help)}")
    walk(parser, [])
    return "\n".join(lines) + "\n"


def _q(text: Any) -> str:
    return "'" + str(text or "").replace("'", "\\'") + "'"


def cmd_completion(args: argparse.Namespace) -> int:
    """Print the completion script for ``args.shell``."""
    from flowtide.client.cli.main import build_parser
    parser = build_parser()
    if args.shell == "fish":
        print(_fish(parser), end="")
        return 0
    import shtab
    print(shtab.complete(parser, shell=args.shell))
    return 0

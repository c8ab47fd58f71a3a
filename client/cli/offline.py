"""The ``flowtide`` commands that need no Temporal: validate, schema, codes (they import no SDK, so they start fast)."""

from __future__ import annotations

import argparse
import json

from flowtide.client.cli.common import EXIT_INVALID, EXIT_OK, load_flow
from flowtide.client.cli.errors import problem_line
from flowtide.workflows.errors import FlowValidationError


def cmd_validate(args: argparse.Namespace) -> int:
    worst = EXIT_OK
    results = []
    for f in args.files:
        try:
            flow = load_flow(f)
            results.append({"file": f, "valid": True, "problems": [w.to_dict() for w in flow.warnings]})
            if not args.json:
                print(f"{f}: ok ({len(flow.warnings)} warning(s))")
                for w in flow.warnings:
                    print(problem_line(f, w))
        except FlowValidationError as err:
            worst = EXIT_INVALID
            results.append({"file": f, "valid": False, "problems": [p.to_dict() for p in err.problems]})
            if not args.json:
                for p in err.problems:
                    print(problem_line(f, p))
    if args.json:
        print(json.dumps(results, indent=2))
    return worst


def cmd_schema(args: argparse.Namespace) -> int:
    from flowtide.workflows.language import flow_json_schema
    print(json.dumps(flow_json_schema(), indent=2))
    return EXIT_OK


def cmd_codes(args: argparse.Namespace) -> int:
    from flowtide.workflows.errors import TAXONOMY, codes_of_class
    if args.permanent:
        codes = codes_of_class("permanent", "auth", "invalid-config")
        print(json.dumps(codes) if args.json else "\n".join(codes))
        return EXIT_OK
    rows = sorted(TAXONOMY.values(), key=lambda r: (r.family, r.code))
    if args.json:
        print(json.dumps([{"code": r.code, "family": r.family, "class": r.cls, "description": r.description}
                          for r in rows], indent=2))
        return EXIT_OK
    print(f"{'CODE':32} {'FAMILY':11} {'CLASS':15} DESCRIPTION")
    for r in rows:
        print(f"{r.code:32} {r.family:11} {r.cls:15} {r.description}")
    return EXIT_OK


def cmd_examples(args: argparse.Namespace) -> int:
    from flowtide.client.cli.common import NotFound
    from flowtide.client.examples import example, examples
    if args.name:  # the path of one: `flowtide run $(flowtide examples greet)`
        try:
            print(example(args.name))
        except FileNotFoundError as exc:
            raise NotFound(str(exc)) from None
        return EXIT_OK
    rows = [{"name": name, "path": str(example(name)), "about": about} for name, about in examples().items()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['name']:{width}}  {r['about']}")
    print(f"\nIn {example('hello').parent}. `flowtide examples NAME` prints one's path: "
          "flowtide run $(flowtide examples greet)")
    return EXIT_OK

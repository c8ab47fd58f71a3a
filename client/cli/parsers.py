"""The ``flowtide`` subcommand parsers: shared flags, help pages (example, environment, exit codes), registration.

Commands are given as ``"module:function"`` strings and imported only when run, so ``flowtide --help``
imports neither the Temporal SDK nor the flow language.
"""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from flowtide.client.cli.common import UsageError

RUNS = "flowtide.client.cli.runs"
SCHED = "flowtide.client.cli.schedule"
CONNECTION_ENV = ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_PROFILE", "TEMPORAL_CONFIG_FILE",
                  "TEMPORAL_API_KEY", "TEMPORAL_TLS", "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
                  "TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_TLS_CLIENT_KEY_PATH", "TEMPORAL_TLS_SERVER_NAME",
                  "FLOWTIDE_CODEC_KEY")
EXIT_CODES = "0 ok, 1 run failed or Temporal refused the request, 2 invalid flow/input/arguments, " \
             "3 Temporal unreachable, 4 not found (run, schedule, example), 130 interrupted"


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (``UsageError``), printed by ``main`` like any other."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _epilog(example: str, env: tuple[str, ...], temporal: bool) -> str:
    names = (*env, *(CONNECTION_ENV if temporal else ()))
    lines = [f"example:\n  {example}"]
    if names:
        lines.append("environment:\n  " + "\n  ".join(names))
    lines.append(f"exit codes:\n  {EXIT_CODES}")
    return "\n\n".join(lines)


def add_command(sub: Any, name: str, fn: str, help_: str, example: str, *, temporal: bool = True,
                env: tuple[str, ...] = (), json_help: str = "print JSON (errors too: {\"error\": ...})") -> Any:
    """A subcommand running ``fn`` with ``--json``, the connection flags when it talks to ``temporal``, and help."""
    sp = sub.add_parser(name, help=help_, description=help_, epilog=_epilog(example, env, temporal),
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    sp.set_defaults(fn=fn)
    sp.add_argument("--json", action="store_true", help=json_help)
    if temporal:
        add_connection(sp)
    return sp


def add_connection(sp: argparse.ArgumentParser) -> None:
    """The ``temporal`` CLI's connection flags; unset ones come from the profile file and environment."""
    g = sp.add_argument_group("Temporal connection (default: profile file, then TEMPORAL_* variables)")
    g.add_argument("--address", help="host:port of the Temporal frontend")
    g.add_argument("--namespace", help="namespace (default: default)")
    g.add_argument("--profile", help="profile in the TOML config file (TEMPORAL_PROFILE)")
    g.add_argument("--config-file", help="TOML config file (TEMPORAL_CONFIG_FILE)")
    g.add_argument("--tls", action=argparse.BooleanOptionalAction, default=None, help="use TLS")
    g.add_argument("--tls-ca-path", help="CA certificate that signed the server's certificate (PEM)")
    g.add_argument("--tls-cert-path", help="client certificate for mTLS (PEM)")
    g.add_argument("--tls-key-path", help="client private key for mTLS (PEM)")
    g.add_argument("--tls-server-name", help="server name to verify (SNI override)")
    g.add_argument("--api-key", help="API key (Temporal Cloud); implies --tls")


def add_input(sp: argparse.ArgumentParser) -> None:
    """``--input`` and ``--input-file``."""
    sp.add_argument("--input", help="trigger payload as JSON")
    sp.add_argument("--input-file", help="trigger payload file (JSON or YAML)")


def register_runs(sub: Any) -> None:
    """Add ``runs``, ``rerun`` and ``replay``."""
    runs = sub.add_parser("runs", help="list, show, watch and export runs (no worker needed)",
                          description="Inspect runs from Temporal's data; works with no worker running.")
    rsub = runs.add_subparsers(dest="runs_cmd", required=True, parser_class=Parser)
    sp = add_command(rsub, "list", f"{RUNS}:cmd_list", "recent runs, newest first",
                     "flowtide runs list --status failed --flow hello --limit 5")
    sp.add_argument("--status", help="running, completed, completed_with_errors, failed, cancelled, ...")
    sp.add_argument("--flow", help="flow id")
    sp.add_argument("--run-id", help="run id prefix")
    sp.add_argument("--limit", type=int, default=20)
    sp = add_command(rsub, "show", f"{RUNS}:cmd_show", "one run: overview, timeline, the first failed step "
                     "expanded", "flowtide runs show 0194c2 --step charge")
    sp.add_argument("run", help="run id, unique prefix of one, or workflow id")
    sp.add_argument("--step", help="expand this step (id, or id#index in a loop)")
    sp = add_command(rsub, "watch", f"{RUNS}:cmd_watch", "refresh until the run ends, with a progress line",
                     "flowtide runs watch 0194c2", env=("NO_COLOR",), json_help="print only the final run record")
    sp.add_argument("run")
    sp.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes")
    sp = add_command(rsub, "export", f"{RUNS}:cmd_export", "write the run's Temporal history JSON",
                     "flowtide runs export 0194c2 -o run.json")
    sp.add_argument("run")
    sp.add_argument("-o", "--output", help="file (default: standard output)")
    _register_rerun(sub)
    sp = add_command(sub, "replay", f"{RUNS}:cmd_replay", "replay a run's history against the current interpreter "
                     "(exit 1 when the code diverges)", "flowtide replay --history run.json")
    sp.add_argument("run", nargs="?")
    sp.add_argument("--history", help="a history JSON file (flowtide runs export, temporal workflow show -o json)")


def _register_rerun(sub: Any) -> None:
    sp = add_command(sub, "rerun", f"{RUNS}:cmd_rerun", "start a new run of a run's flow revision and input",
                     "flowtide rerun 0194c2 --from-failed --flow fixed.yaml", json_help="print the new run's record")
    sp.add_argument("run")
    sp.add_argument("--from-failed", action="store_true",
                    help="reuse the outputs of the steps that completed before the first failed step")
    sp.add_argument("--failed-items", action="store_true",
                    help="each for-each runs only the items that failed (their recorded results are reused); "
                         "steps outside loops as with --from-failed")
    sp.add_argument("--flow", help="re-run on this fixed revision of the flow (step ids must match)")
    add_input(sp)
    sp.add_argument("--dry-run", action="store_true", help="print the plan, start nothing")
    sp.add_argument("--no-wait", action="store_true", help="start it and print its workflow id")
    sp.add_argument("--no-worker", action="store_true", help="rely on workers already polling")
    sp.add_argument("--task-queue", help="default: the old run's task queue")


def register_schedule(sub: Any) -> None:
    """Add ``schedule create|list|pause|unpause|trigger|delete``."""
    sched = sub.add_parser("schedule", help="run a flow on a cron schedule (Temporal Schedules)",
                           description="Run a flow on a cron schedule, kept by Temporal (no worker needed to "
                                       "create one; runs need a worker).")
    ssub = sched.add_subparsers(dest="schedule_cmd", required=True, parser_class=Parser)
    sp = add_command(ssub, "create", f"{SCHED}:cmd_create", "schedule runs of a flow",
                     "flowtide schedule create flows/report.yaml --cron '*/5 * * * *' --id nightly-report",
                     env=("FLOWTIDE_TASK_QUEUE",))
    sp.add_argument("file")
    sp.add_argument("--cron", required=True, help="cron expression, e.g. '*/5 * * * *' (UTC)")
    add_input(sp)
    sp.add_argument("--id", help="schedule id (default: <flowId>-schedule)")
    sp.add_argument("--overlap", default="skip",
                    choices=("skip", "buffer-one", "buffer-all", "allow-all", "cancel-other", "terminate-other"),
                    help="when the previous run is still going (default: skip)")
    sp.add_argument("--catchup-window", default="1m", help="how late a missed run may still start (default 1m)")
    sp.add_argument("--task-queue")
    add_command(ssub, "list", f"{SCHED}:cmd_list", "schedules", "flowtide schedule list")
    for verb, help_ in (("pause", "stop starting runs"), ("unpause", "start runs again"),
                        ("trigger", "start a run now"), ("delete", "delete the schedule (runs stay)"),
                        ("describe", "one schedule's settings and recent runs")):
        add_command(ssub, verb, f"{SCHED}:cmd_{verb}", help_, f"flowtide schedule {verb} nightly-report") \
            .add_argument("id")


def register_tools(sub: Any) -> None:
    """Add ``completion``."""
    sp = add_command(sub, "completion", "flowtide.client.cli.tools:cmd_completion",
                     "print a shell completion script",
                     "flowtide completion bash > ~/.local/share/bash-completion/completions/flowtide", temporal=False)
    sp.add_argument("shell", choices=("bash", "zsh", "fish"))


# Examples of the commands that register themselves with plain argparse (service, connections, breakers).
ADMIN_EXAMPLES = {
    "serve": "flowtide serve --host 127.0.0.1 --port 8088",
    "codec-server": "flowtide codec-server --port 8081",
    "projects create": "flowtide projects create acme",
    "projects list": "flowtide projects list --json",
    "keys create": "flowtide keys create --project acme --role run --name billing",
    "keys list": "flowtide keys list --project acme",
    "keys revoke": "flowtide keys revoke 3f9c2a1b",
    "flows deploy": "flowtide flows deploy examples/hello.yaml --project acme",
    "flows list": "flowtide flows list --project acme",
    "flows revert": "flowtide flows revert hello --revision 2 --project acme",
    "hooks secret": "flowtide hooks secret hello --project acme",
    "connections add": "flowtide connections add crm --kind bearer --token -",
    "connections reconnect": "flowtide connections reconnect crm --kind oauth2 --refresh-token -",
    "connections list": "flowtide connections list --json",
    "connections show": "flowtide connections show crm",
    "connections test": "flowtide connections test crm --url https://api.example.com/me",
    "connections remove": "flowtide connections remove crm",
    "breakers list": "flowtide breakers list --json",
    "breakers reset": "flowtide breakers reset api.example.com:443",
}
ADMIN_ENV = ("FLOWTIDE_DATABASE_URL", "FLOWTIDE_SECRET_KEY", "FLOWTIDE_BREAKERS_DB")


FORMATS = ("table", "json", "jsonl")


def add_output_formats(parser: argparse.ArgumentParser) -> None:
    """``-o/--output table|json|jsonl`` (as in the ``temporal`` CLI) on every command that takes ``--json``;
    ``--json`` stays, the same as ``-o json``. A command with an ``-o`` of its own (``runs export -o FILE``)
    keeps it."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for child in action.choices.values():
            if any(isinstance(a, argparse._SubParsersAction) for a in child._actions):
                add_output_formats(child)
            elif not any("-o" in a.option_strings for a in child._actions):
                child.add_argument("-o", "--output", dest="format", choices=FORMATS,
                                   help="table (default: text for people), json (as --json), or jsonl (one "
                                   "JSON object per line: each row of a list)")


def finish_help(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> None:
    """Give every command registered without ``add_command`` the same help shape: an example, the environment
    it reads, the exit codes, and ``--json`` (errors as ``{"error": ...}``)."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for name, child in action.choices.items():
            here = (*path, name)
            if any(isinstance(a, argparse._SubParsersAction) for a in child._actions):
                finish_help(child, here)
                continue
            if child.epilog and "example:" in child.epilog:
                continue
            example = ADMIN_EXAMPLES.get(" ".join(here), f"flowtide {' '.join(here)}")
            child.epilog = _epilog(example, ADMIN_ENV, False)
            child.formatter_class = argparse.RawDescriptionHelpFormatter
            if not any("--json" in a.option_strings for a in child._actions):
                child.add_argument("--json", action="store_true", help="errors as JSON: {\"error\": ...}")

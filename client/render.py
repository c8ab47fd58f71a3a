"""Plain-text views of run records for the terminal (the run record itself is docs/runs.md).

``record_text`` is the run page (docs/runs.md) in text: the overview (status, flow, ``3 / 7 steps``, and a
one-line answer to "which step, what code, will a retry help"), the run-level error banner, the counts
line, the timeline, and the first failed step expanded (code as title, message, provider status,
``Retrying in N s``, technical details, then Input / Output / Console). Later failures are marked as
downstream of the first one.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from flowtide.workflows.errors import classify

ICONS = {"completed": "✓", "warning": "!", "failed": "✗", "skipped": "-", "running": "…", "retrying": "↻",
         "pending": " ", "cancelled": "⊘"}
ITERATIONS_SHOWN = 3  # loop iteration rows per step before the rest is summed up in one line
TEXT_LIMIT = 1500


def duration(ms: Any) -> str:
    """``850 ms``, ``12.3 s``, ``4 min 05 s`` or ``-``."""
    if ms is None:
        return "-"
    ms = int(ms)
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    return f"{ms // 60_000} min {ms % 60_000 // 1000:02d} s"


def when(iso: Any) -> str:
    """An ISO timestamp as local ``YYYY-MM-DD HH:MM:SS``, or ``-``."""
    if not iso:
        return "-"
    moment = iso if isinstance(iso, datetime) else datetime.fromisoformat(str(iso))
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _short(value: Any, limit: int = TEXT_LIMIT) -> str:
    text = value if isinstance(value, str) else json.dumps(value, indent=2, default=str)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars; see --json)"


def _indent(text: str, pad: str = "    ") -> list[str]:
    return [pad + line for line in text.splitlines() or [""]]


def retry_advice(err: dict[str, Any]) -> str:
    """Will a retry help? From the code's class, the provider status and the retry decision."""
    cls = err.get("class") or classify(str(err.get("code") or "UNKNOWN_ERROR"))
    status = err.get("providerStatus")
    if cls in ("transient", "rate-limit") or status == 429 or (isinstance(status, int) and status >= 500):
        auto = "" if err.get("retryable") else " It was not retried automatically (not safe for this call)."
        return (f"likely: a temporary problem ({cls}); re-run once the other side recovers.{auto}")
    if cls in ("auth", "invalid-config", "permanent") or (isinstance(status, int) and 400 <= status < 500):
        words = {"auth": "an authentication", "invalid-config": "a configuration", "permanent": "a permanent"}
        return f"no: {words.get(str(cls), 'a permanent')} problem; re-running as-is fails the same way. Fix the " \
               "flow, its input or its connection first."
    return "unknown cause: read the message and the technical details before re-running."


def retry_lines(retry: dict[str, Any], indent: str) -> list[str]:
    """``Retrying in N s`` while Temporal waits to start the next attempt, or why it does not start."""
    of = f" of {retry['maxAttempts']}" if retry.get("maxAttempts") else ""
    if retry.get("state") == "paused":
        return [f"{indent}The step's activity is paused (temporal activity unpause resumes it)"]
    if retry.get("state") == "started":
        return [f"{indent}Attempt {retry['attempt']}{of} is running now"]
    if retry.get("state") != "scheduled" or retry.get("attempt", 1) < 2:
        return []
    wait = retry.get("retryInS")
    if wait is not None and wait >= 0.5:
        return [f"{indent}Retrying in {round(wait)}s (attempt {retry['attempt']}{of}): Temporal is already "
                "retrying, no action needed while this shows"]
    return [f"{indent}Attempt {retry['attempt']}{of} is due but no worker has started it: is a worker running?"]


def error_panel(err: dict[str, Any], step: dict[str, Any] | None = None, indent: str = "  ") -> list[str]:
    """The error of a step: code as title, message, provider status, pending retry, advice, details."""
    lines = [f"{indent}{err.get('code') or 'Error'}", f"{indent}Message: {err.get('message')}"]
    if err.get("providerStatus") is not None:
        hint = " (retryable)" if err.get("retryable") else ""
        lines.append(f"{indent}Provider status: {err['providerStatus']}{hint}")
    retry = (step or {}).get("retry") or {}
    lines += retry_lines(retry, indent)
    if retry.get("state") in ("scheduled", "started") and retry.get("attempt", 1) > 1:
        lines.append(f"{indent}Will a retry help? Temporal is retrying it already; if every attempt fails: "
                     f"{retry_advice(err)}")
    else:
        lines.append(f"{indent}Will a retry help? {retry_advice(err)}")
    lines.append(f"{indent}Technical details:")
    if err.get("detail"):
        lines += _indent(_short(err["detail"], 800), indent + "  ")
    cls = err.get("class") or classify(str(err.get("code")))
    lines.append(f"{indent}  Code: {err.get('code') or 'Error'}   class: {cls}   type: {err.get('type')}   "
                 f"attempt: {err.get('attempt', 1)}")
    return lines


def _data_section(title: str, value: Any, empty: str) -> list[str]:
    return [f"  {title}:", *(_indent(_short(value)) if value not in (None, {}, []) else [f"    {empty}"])]


def step_details(step: dict[str, Any], number: int | None = None) -> list[str]:
    """One step expanded: header, error panel (or pending retry), Input, Output, Console."""
    where = f", step {number}" if number else ""
    it = f", iteration {step['iteration']}" if step.get("iteration") is not None else ""
    label = "First failed step" if step.get("_first") else "Step"
    out = [f"{label}: {step.get('title') or step['stepId']} ({step['stepId']}, {step['stepType']}{it}{where})",
           f"  Status: {step['status']}   {_attempts(step)}   Duration: {duration(step.get('durationMs'))}"]
    err = step.get("error") or ((step.get("retry") or {}).get("lastError") if step.get("retry") else None)
    if err:
        out += error_panel(err, step)
    out += _data_section("Input", step.get("input"), "No input data available")
    out += _data_section("Output", step.get("output"), "No output data available")
    if step.get("console") or step["stepType"] == "core.code":
        out += _data_section("Console", "\n".join(step.get("console") or []),
                             "No console output. Call print() (console.log() in JavaScript) from your code to "
                             "capture diagnostics.")
    return out


def _attempts(step: dict[str, Any]) -> str:
    n = int(step.get("attempts") or 0)
    return f"{n} attempt{'s' if n != 1 else ''}"


def counts_line(rec: dict[str, Any]) -> str:
    """``5 completed, 1 failed`` (statuses with a zero count left out)."""
    counts = rec.get("counts") or {}
    order = ["completed", "warning", "failed", "retrying", "running", "skipped", "cancelled"]
    retrying = sum(1 for s in rec.get("steps") or [] if s["status"] == "retrying")
    values = dict(counts, retrying=retrying, running=max(0, int(counts.get("running", 0)) - retrying))
    parts = [f"{values[k]} {k}" for k in order if values.get(k)]
    return ", ".join(parts) or "no steps ran"


def first_failed(rec: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """The first failed step's (timeline number, row); else the first step Temporal is retrying."""
    steps = rec.get("steps") or []
    first = rec.get("firstFailedStep")
    for n, s in enumerate(steps, 1):
        if first and s["stepId"] == first and s["status"] == "failed" and not s.get("retried"):
            return n, s
    for n, s in enumerate(steps, 1):
        if s["status"] == "retrying":
            return n, s
    return None


def row_mark(n: int, s: dict[str, Any], first_n: int | None) -> str | None:
    """Why timeline row ``n`` is marked (terminal and runs page word it each their own way): ``first``
    (the first failed step), ``retrying``, ``absorbed``, ``retried``, ``downstream``, ``reused``, or None."""
    if first_n is not None and n == first_n:
        return "first" if s["status"] == "failed" else "retrying"
    if s["status"] == "failed":
        if (s.get("error") or {}).get("absorbed"):
            return "absorbed"
        if s.get("retried"):
            return "retried"
        if first_n is not None and n > first_n:
            return "downstream"
    return "reused" if s.get("reused") else None


MARKS = {"first": "  <- first failed step", "retrying": "  <- retrying", "absorbed": "  (absorbed: the run went on)",
         "retried": "  (retried by onError: retry-step)", "downstream": "  downstream of step {first_n}",
         "reused": "  (reused from the earlier run)"}


def _marker(n: int, s: dict[str, Any], first_n: int | None) -> str:
    mark = row_mark(n, s, first_n)
    return MARKS[mark].format(first_n=first_n) if mark else ""


def _visible(steps: list[dict[str, Any]], keep: set[int]) -> list[tuple[int, dict[str, Any]] | str]:
    """Timeline rows with loop iterations beyond ``ITERATIONS_SHOWN`` per step summed up in one line."""
    seen: dict[str, int] = {}
    hidden: dict[str, list[int]] = {}
    out: list[tuple[int, dict[str, Any]] | str] = []
    for n, s in enumerate(steps, 1):
        if s.get("iteration") is None or n in keep:
            out.append((n, s))
            continue
        k = s["stepId"]
        seen[k] = seen.get(k, 0) + 1
        if seen[k] <= ITERATIONS_SHOWN or (s["status"] == "failed" and seen[k] <= 2 * ITERATIONS_SHOWN):
            out.append((n, s))
        else:
            hidden.setdefault(k, []).append(int(s["status"] == "failed"))
    for k, flags in hidden.items():
        out.append(f"       ... {len(flags)} more iteration rows of '{k}' ({sum(flags)} failed; --step {k} or --json)")
    return out


def timeline(rec: dict[str, Any], first_n: int | None) -> list[str]:
    """The step table: number, title, kind, status, attempts, duration, marker."""
    steps = rec.get("steps") or []
    width = min(40, max([len(_title(s)) for s in steps] + [4]))
    kind_w = max([len(s["stepType"]) for s in steps] + [4])
    out = [f"  {'':1} {'#':>3}  {'STEP':{width}}  {'KIND':{kind_w}}  {'STATUS':10}  {'ATTEMPTS':10}  DURATION"]
    for item in _visible(steps, {first_n} if first_n else set()):
        if isinstance(item, str):
            out.append(item)
            continue
        n, s = item
        title = clip(_title(s), width)
        out.append(f"  {ICONS.get(s['status'], '?')} {n:>3}  {title:{width}}  {s['stepType']:{kind_w}}  "
                   f"{s['status']:10}  {_attempts(s):10}  {duration(s.get('durationMs')):>8}{_marker(n, s, first_n)}")
    return out


def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters at a word boundary, with an ellipsis when something was cut."""
    if len(text) <= width:
        return text
    cut = text[:max(1, width - 1)]
    space = cut.rfind(" ")
    if space > width // 2:  # a word boundary not too far back; else cut inside the (long) word
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + "…"


def _title(s: dict[str, Any]) -> str:
    it = f" [{s['iteration']}]" if s.get("iteration") is not None else ""
    return f"{s.get('title') or s['stepId']}{it}"


def headline(rec: dict[str, Any], found: tuple[int, dict[str, Any]] | None) -> str | None:
    """One line: which step failed, with what code, and whether a retry helps."""
    if found is None:
        return None
    n, s = found
    err = s.get("error") or ((s.get("retry") or {}).get("lastError")) or {}
    verb = "Failed at" if s["status"] == "failed" else "Retrying"
    status = f", provider status {err['providerStatus']}" if err.get("providerStatus") is not None else ""
    return (f"{verb} step {n} \"{s.get('title') or s['stepId']}\" ({s['stepId']}): {err.get('code') or 'Error'}"
            f"{status}. Retry helps? {retry_advice(err).split(':')[0]}")


def overview(rec: dict[str, Any]) -> list[str]:
    """The header lines of a run."""
    prog = rec.get("progress") or {}
    out = [f"Run {rec.get('workflowId')}   run id {rec.get('runId')}",
           f"Flow {rec.get('flowId')} v{rec.get('flowVersion')}   Status: {str(rec.get('status')).upper()}   "
           f"Progress: {prog.get('done', 0)} / {prog.get('total', 0)} steps   "
           f"Duration: {duration(rec.get('durationMs'))}",
           f"Started {when(rec.get('startedAt'))}   Completed {when(rec.get('completedAt'))}"
           + (f"   Re-run of {rec['rerunOf']}" if rec.get("rerunOf") else "")]
    if rec.get("partial"):
        out.append(f"Note: {rec['partial']}")
    return out


def record_text(rec: dict[str, Any], *, step: str | None = None, notes: list[str] | None = None) -> str:
    """The whole run page; ``step`` (``id`` or ``id#index``) expands that step instead of the first failed."""
    found = first_failed(rec)
    out = overview(rec) + [f"Note: {n}" for n in notes or []]
    line = headline(rec, found)
    if line:
        out.append(line)
    if rec.get("error"):
        out += ["", "Execution error (the run failed before or outside its steps):", *error_panel(rec["error"])]
    out += ["", f"Steps: {counts_line(rec)}", *timeline(rec, found[0] if found else None)]
    chosen = pick_step(rec, step) if step else found
    if chosen:
        n, row = chosen
        out += ["", *step_details(dict(row, _first=chosen == found and row["status"] == "failed"), n)]
    if rec.get("output") is not None:
        out += ["", "Output:", *_indent(_short(rec["output"]), "  ")]
    return "\n".join(out)


def pick_step(rec: dict[str, Any], ref: str) -> tuple[int, dict[str, Any]] | None:
    """The (timeline number, row) of step ``id`` or ``id#index`` (its last run), or None."""
    sid, _, idx = ref.partition("#")
    rows = [(n, s) for n, s in enumerate(rec.get("steps") or [], 1) if s["stepId"] == sid
            and (not idx or str(s.get("iteration")) == idx)]
    return rows[-1] if rows else None

"""JavaScript in the Code step sandbox: V8 through mini-racer, run by the isolated child
(``_sandbox_runner.py``, which loads this file by its path before it locks itself down). Standard library and
mini-racer only."""

from __future__ import annotations

import json
import sys
from typing import Any

_JS_PRELUDE = """
(async function (script, ctx, maxLines, maxChars) {
  const lines = []; let chars = 0, dropped = 0;
  const show = (v) => typeof v === 'string' ? v : (() => { try { return JSON.stringify(v) } catch (e) {
    return String(v) } })();
  const log = (...a) => { for (const line of a.map(show).join(' ').split('\\n')) {
    if (lines.length < maxLines && chars + line.length <= maxChars) { lines.push(line); chars += line.length }
    else dropped++ } };
  const console = {log, info: log, warn: log, error: log, debug: log};
  const done = (o) => JSON.stringify(Object.assign(o, {console: lines, consoleDropped: dropped}));
  let fn;
  try {
    fn = new (Object.getPrototypeOf(async function () {}).constructor)(
      'input', '$steps', '$errors', '$vars', 'params', '$item', '$index', 'env', 'console', script);
  } catch (e) { return done({status: 'syntax', message: String(e && e.message || e)}) }
  try {
    const v = await fn(ctx.input, ctx.steps, ctx.errors, ctx.vars, ctx.params, ctx.item, ctx.index, ctx.env,
                       console);
    let body;
    try { body = JSON.stringify(v === undefined ? null : v) } catch (e) {
      return done({status: 'invalid', message: String(e && e.message || e)}) }
    if (body === undefined) return done({status: 'invalid', message: 'the value has no JSON form'});
    return done({status: 'ok', value: JSON.parse(body)});
  } catch (e) {
    const isErr = e instanceof Error;
    return done({status: 'raised', type: isErr ? e.name : typeof e, message: isErr ? e.message : show(e),
                 code: e && typeof e.code === 'string' ? e.code : null, traceback: isErr ? String(e.stack) : ''});
  }
})"""


def run_javascript(req: dict[str, Any]) -> str:
    """Run a JavaScript script in V8 (mini-racer); its console lines come back inside the result."""
    sys.path.insert(0, req["jsPath"])
    from py_mini_racer import MiniRacer  # optional: present only where JavaScript is enabled

    racer = MiniRacer()
    racer.set_hard_memory_limit(int(req["memoryMb"]) * 2**20)
    args = json.dumps([req["script"], req["context"], req["consoleLines"], req["consoleChars"]])
    try:
        promise: Any = racer.eval(f"{_JS_PRELUDE}.apply(null, {args})")
        body = str(promise.get())
    except Exception as exc:
        if racer.was_hard_memory_limit_reached():
            return '{"status":"oom","message":"JavaScript heap limit reached"}'
        return json.dumps({"status": "raised", "type": type(exc).__name__, "message": str(exc)[:4000]})
    if racer.was_hard_memory_limit_reached():
        return '{"status":"oom","message":"JavaScript heap limit reached"}'
    if len(body) > int(req["outputBytes"]) + 64 * 1024:
        return json.dumps({"status": "too_large", "size": len(body)})
    return body

"""The soak: steady load on the cluster of ``bench/cluster.py`` while a chaos loop breaks it.

    python -m bench.soak --minutes 10 --assert        # or python -m bench.cluster --soak --minutes 10

Flows are started over REST (``POST /v1/flows/soak/runs``, each with an ``Idempotency-Key``, retried on any
failure), over a signed webhook, and by a Temporal schedule (every 10 s), at a steady rate, for ``--minutes``.
Meanwhile a worker is killed (SIGKILL) every 30 s and restarted at once, and once each: an API replica is
killed (and restarted 5 s later), PostgreSQL is restarted, the Temporal server is restarted. Then the load
stops, the runs drain, and the report says:

- runs: started (answered 202/200, plus the schedule's) and ended; ``missing`` (answered but never reached
  their last step) and ``stuck`` (still running after the drain) must both be 0, and every run completed;
- side effects: calls the target saw per (run, step): none missing, duplicates per worker kill (Temporal runs
  a step at least once: a step in flight on a killed worker runs again);
- the API outside the fault windows (a fault's start to 5 s after its recovery): error rate, p50/p99;
- shared state: page sessions made on the killed replica that the other still honours, the rate limit's
  error through the balancer, breaker calls across the workers (``bench/soak_probes.py``).

``--assert`` fails (exit 1) on lost, stuck or failed runs, a missing side effect, more than
``DUPLICATES_PER_FAULT`` duplicates per fault, or API errors outside the fault windows over 1 %.
``--assert-sessions`` also requires every session to survive the replica's death, and ``--assert-shared``
the rate limit within +-20 % and one breaker for the deployment (both hold once state is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench import soak_probes as probes
from bench.cluster import PROJECT, Cluster

API_RATE = 10.0  # FLOWTIDE_API_RATE of the replicas: the load key stays under it, the probe goes over it
WORKER_KILL_EVERY_S = 30
GRACE_S = 5.0  # a fault window ends this long after the part is back
DUPLICATES_PER_FAULT = 20
SCHEDULE_ID = "soak-schedule"
Sample = tuple[float, float, int]  # a call: when it started, how long it took (s), its status (0: no answer)


def _ok(sample: Sample) -> bool:
    return sample[2] in (200, 202)


@dataclass
class Soak:
    cluster: Cluster
    seconds: float
    rest_rate: float = 1.0
    hook_rate: float = 0.25
    acked: dict[str, str] = field(default_factory=dict)  # run key -> "rest" | "hook"
    samples: list[Sample] = field(default_factory=list)  # REST starts
    hook_samples: list[Sample] = field(default_factory=list)
    windows: list[tuple[str, float, float]] = field(default_factory=list)
    worker_kills: int = 0
    t0: float = 0.0
    sessions: dict[str, Any] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    # ---- load -----------------------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.cluster.keys['admin']}", "x-project-id": PROJECT}

    async def _start(self, http: httpx.AsyncClient, kind: str, k: str, secret: str) -> None:
        """One start, retried (same Idempotency-Key: one run whatever happens) until it is answered."""
        for attempt in range(8):
            body = json.dumps({"input": {"k": k}} if kind == "rest" else {"k": k}).encode()
            headers = {"content-type": "application/json", "idempotency-key": k}
            if kind == "rest":
                url, headers = "/v1/flows/soak/runs", {**headers, **self._headers()}
            else:
                url, headers = f"/v1/hooks/{PROJECT}/soak", {**headers, "x-flowtide-signature":
                                                             probes.signature(secret, body)}
            t0 = time.monotonic()
            try:
                status = (await http.post(url, content=body, headers=headers)).status_code
            except httpx.HTTPError:
                status = 0
            (self.samples if kind == "rest" else self.hook_samples).append((t0, time.monotonic() - t0, status))
            if status in (200, 202):
                self.acked[k] = kind
                return
            await asyncio.sleep(min(1.0 + attempt, 5.0))

    async def _load(self, kind: str, rate: float, secret: str) -> None:
        limits = httpx.Limits(max_keepalive_connections=0)  # each call a new connection: round robin per call
        async with httpx.AsyncClient(base_url=self.cluster.api_url, timeout=30, limits=limits) as http:
            n, t0 = 0, time.monotonic()
            while time.monotonic() < t0 + self.seconds:
                task = asyncio.create_task(self._start(http, kind, f"{kind}-{n}", secret))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
                n += 1
                await asyncio.sleep(max(0.0, t0 + n / rate - time.monotonic()))
            while self.tasks:
                await asyncio.gather(*list(self.tasks))

    # ---- chaos ----------------------------------------------------------------------------------------
    async def _fault(self, name: str, action: Any) -> None:
        t0 = time.monotonic()
        await asyncio.to_thread(action)
        self.windows.append((name, t0, time.monotonic() + GRACE_S))

    def _bounce_replica(self) -> None:
        self.cluster.replicas[0].kill()
        self._check_sessions()
        time.sleep(5)
        self.cluster.replicas[0].start()

    def _check_sessions(self) -> None:
        made = self.sessions.get("cookies", [])
        survivor = self.cluster.replica_url(1)
        alive = [asyncio.run(probes.session_alive(survivor, c)) for c in made]
        self.sessions.update(made=len(made), survived=sum(alive))

    async def _chaos(self) -> None:
        c, start = self.cluster, time.monotonic()
        events = sorted([(0.2 * self.seconds + 7, "api replica killed", self._bounce_replica),
                         (0.45 * self.seconds + 7, "postgresql restarted", c.restart_postgres),
                         (0.7 * self.seconds + 7, "temporal restarted", c.restart_temporal)]
                        + [(t, "worker", None) for t in range(WORKER_KILL_EVERY_S // 2, int(self.seconds),
                                                               WORKER_KILL_EVERY_S)], key=lambda e: e[0])
        for at, name, action in events:
            await asyncio.sleep(max(0.0, start + at - time.monotonic()))
            if action is None:
                worker = c.workers[self.worker_kills % len(c.workers)]
                self.worker_kills += 1
                await asyncio.to_thread(lambda w=worker: (w.kill(), w.start()))
            else:
                await self._fault(name, action)

    # ---- the whole soak -------------------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        from flowtide.client.connect import connect
        from flowtide.client.schedules import create_schedule
        from flowtide.store.database import Store
        c = self.cluster
        async with httpx.AsyncClient(base_url=c.api_url, headers=self._headers(), timeout=30) as http:
            for doc in (probes.soak_flow(c.target.url), probes.breaker_flow(c.target.url)):
                answer = await http.put(f"/v1/flows/{doc['id']}", json=doc)
                assert answer.status_code == 201, answer.text
        store = Store(c.base_env["FLOWTIDE_DATABASE_URL"])
        secret = store.set_hook_secret(PROJECT, "soak")
        store.engine.dispose()
        cookies = [await probes.sign_in(c.replica_url(0), c.keys["admin"]) for _ in range(probes.SESSIONS)]
        self.sessions["cookies"] = [x for x in cookies if x]
        client = await connect(c.temporal_address)
        await create_schedule(client, probes.soak_flow(c.target.url), "@every 10s", {"k": "sched"},
                              id=SCHEDULE_ID, overlap="allow-all")
        t0 = self.t0 = time.monotonic()
        await asyncio.gather(self._load("rest", self.rest_rate, secret), self._load("hook", self.hook_rate, secret),
                             self._chaos())
        await client.get_schedule_handle(SCHEDULE_ID).delete()
        load_s = time.monotonic() - t0
        stuck = await self._drain(client)
        drained = time.monotonic()
        report = await self._report(client, stuck, load_s)
        report["rateLimit"] = await probes.rate_limit_error(c.api_url, c.keys["read"], API_RATE)
        report["breaker"] = await probes.breaker_calls(c.api_url, c.keys["admin"],
                                                       lambda: c.target.calls["/status/503"], len(c.workers))
        report["phases"] = {"load": round(load_s), "drain": round(drained - t0 - load_s),
                            "probes": round(time.monotonic() - drained)}
        return report

    async def _drain(self, client: Any, wait_s: float = 120) -> int:
        deadline = time.monotonic() + wait_s
        while True:
            running = (await client.count_workflows("ExecutionStatus = 'Running'")).count
            if running == 0 or time.monotonic() > deadline:
                return int(running)
            await asyncio.sleep(2)

    async def _report(self, client: Any, stuck: int, load_s: float) -> dict[str, Any]:
        calls: Counter[tuple[str, str]] = Counter()
        for b in list(self.cluster.target.bodies):
            h = b["headers"]
            if "x-soak-key" in h:
                calls[(h["x-soak-key"], h["x-soak-step"])] += 1
        statuses: Counter[str] = Counter()
        scheduled = 0
        async for wf in client.list_workflows("FlowId = 'soak'"):
            statuses[wf.status.name if wf.status else "UNKNOWN"] += 1
            scheduled += wf.id.startswith(SCHEDULE_ID)
        done = {k for (k, step) in calls if step == "c"}
        missing = sorted(set(self.acked) - done)
        skipped = sorted(f"{k}/{s}" for k in done - {"sched"} for s in "abc" if calls[(k, s)] == 0)
        duplicates = sum(n - 1 for (k, _), n in calls.items() if k != "sched" and n > 1)
        faults = self.worker_kills + 1  # the Temporal restart can repeat steps too
        def outside(samples: list[Sample]) -> list[Sample]:
            """The calls whose whole time lies outside every fault window."""
            return [s for s in samples if not any(s[0] <= b and s[0] + s[1] >= a for _, a, b in self.windows)]
        quiet = outside(self.samples)
        latencies = sorted(s[1] for s in quiet if _ok(s)) or [0.0]
        hooks = outside(self.hook_samples)
        return {
            "loadSeconds": round(load_s), "runs": {
                "started": len(self.acked) + scheduled, "rest": sum(v == "rest" for v in self.acked.values()),
                "webhook": sum(v == "hook" for v in self.acked.values()), "schedule": scheduled,
                "statuses": dict(statuses), "missing": len(missing), "missingKeys": missing[:10], "stuck": stuck},
            "sideEffects": {"steps": sum(calls.values()), "skipped": len(skipped), "duplicates": duplicates,
                            "workerKills": self.worker_kills, "duplicatesPerFault": round(duplicates / faults, 2)},
            "faults": [{"fault": n, "at": round(a - self.t0, 1), "seconds": round(b - a - GRACE_S, 1)}
                       for n, a, b in self.windows],
            "api": {"requests": len(quiet), "errorRate": round(sum(not _ok(s) for s in quiet) / max(1, len(quiet)), 4),
                    "errors": dict(Counter(s[2] for s in quiet if not _ok(s))),
                    "p50ms": round(statistics.median(latencies) * 1000, 1),
                    "p99ms": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1000, 1),
                    "inFaultWindows": len(self.samples) - len(quiet),
                    "slowest": [{"at": round(t - self.t0, 1), "ms": round(d * 1000)} for t, d, _ in
                                sorted(quiet, key=lambda s: -s[1])[:3]],
                    "webhookErrorRate": round(sum(not _ok(s) for s in hooks) / max(1, len(hooks)), 4),
                    "webhookErrors": dict(Counter(s[2] for s in hooks if not _ok(s)))},
            "sessions": {k: v for k, v in self.sessions.items() if k != "cookies"},
        }


def problems(report: dict[str, Any], sessions: bool = False, shared: bool = False) -> list[str]:
    """What ``--assert`` (and ``--assert-sessions``, ``--assert-shared``) refuse in a report."""
    runs, fx, api = report["runs"], report["sideEffects"], report["api"]
    found = []
    if runs["missing"] or runs["stuck"]:
        found.append(f"{runs['missing']} runs lost and {runs['stuck']} stuck")
    if set(runs["statuses"]) - {"COMPLETED"}:
        found.append(f"runs that did not complete: {runs['statuses']}")
    if runs["schedule"] == 0 or runs["webhook"] == 0:
        found.append("the schedule or the webhook started no run")
    if fx["skipped"]:
        found.append(f"{fx['skipped']} steps of completed runs never reached the target")
    if fx["duplicatesPerFault"] > DUPLICATES_PER_FAULT:
        found.append(f"{fx['duplicatesPerFault']} duplicate calls per fault (at most {DUPLICATES_PER_FAULT})")
    if api["errorRate"] > 0.01:
        found.append(f"API error rate {api['errorRate']:.2%} outside the fault windows")
    if sessions and report["sessions"].get("survived") != report["sessions"].get("made"):
        found.append(f"page sessions survived the replica's death: {report['sessions']}")
    if shared and abs(report["rateLimit"]["error"]) > 0.2:
        found.append(f"rate limit off by {report['rateLimit']['error']:+.0%} across replicas")
    if shared and report["breaker"]["calls"] > report["breaker"]["sharedAtMost"]:
        found.append(f"breaker let {report['breaker']['calls']} calls through (one breaker: "
                     f"{report['breaker']['shared']}, at most {report['breaker']['sharedAtMost']} with each "
                     "worker's 1 s view of a closed breaker)")
    return found


def soak(minutes: float, rest_rate: float = 1.0, hook_rate: float = 0.25, keep: bool = False) -> dict[str, Any]:
    """Start a cluster, soak it for ``minutes``, stop it; the report (``keep``: its folder and logs stay)."""
    t0 = time.monotonic()
    with Cluster(api_env={"FLOWTIDE_API_RATE": str(API_RATE)}, keep=keep) as cluster:
        if keep:
            print(f"soak: logs and working folders in {cluster.root}", file=sys.stderr)
        started = time.monotonic() - t0
        report = asyncio.run(Soak(cluster, minutes * 60, rest_rate, hook_rate).run())
        t1 = time.monotonic()
    report["phases"].update(start=round(started), stop=round(time.monotonic() - t1))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=1.0, help="REST starts per second (default 1)")
    parser.add_argument("--hook-rate", type=float, default=0.25, help="webhook starts per second (default 0.25)")
    parser.add_argument("--keep", action="store_true", help="keep the cluster's folder (logs) afterwards")
    parser.add_argument("--assert", dest="check", action="store_true", help="exit 1 when the soak found a fault")
    parser.add_argument("--assert-sessions", action="store_true", help="also: every page session survives")
    parser.add_argument("--assert-shared", action="store_true", help="also: one rate limit, one breaker")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: the cluster stops its children
    report = soak(args.minutes, args.rate, args.hook_rate, args.keep)
    print(json.dumps(report, indent=2))
    found = problems(report, args.assert_sessions, args.assert_shared)
    for line in found:
        print(f"soak: {line}", file=sys.stderr)
    return 1 if found and (args.check or args.assert_sessions or args.assert_shared) else 0


if __name__ == "__main__":
    sys.exit(main())

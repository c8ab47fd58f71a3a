"""Template rendering throughput: renders per second of a typical step input with 10 placeholders.

A plain script (not a test): ``python bench/bench_templates.py [seconds-per-round] [rounds]``. It renders the same input
dict against a realistic scope repeatedly (compiled templates are cached, as in a real run) and prints
the best and the median rate over several short rounds.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flowtide.workflows.language import render

SCOPE = {
    "initial": {"customerId": "c-42", "name": "Ada", "email": "Ada@Example.com", "total": 99.5,
                "items": [{"id": i, "sku": f"sku-{i}", "qty": i % 3 + 1} for i in range(10)]},
    "fetch-customer": {"status": 200, "headers": {"content-type": "application/json"},
                       "body": {"id": 42, "name": "Ada Lovelace", "tier": "gold"},
                       "$meta": {"success": True, "skipped": False, "operationalStatus": "ok"}},
    "vars": {"region": "eu"},
    "$errors": [],
    "$run": {"id": "run-1", "flowId": "order-intake", "flowVersion": 3, "attempt": 1},
}

INPUT = {
    "url": "https://api.example.com/{{ vars.region }}/customers/{{ initial.customerId }}/orders",
    "method": "POST",
    "headers": {"X-Run": "{{ $run.id }}", "Authorization": "Bearer {{ secrets.API_KEY }}"},
    "json": {
        "customer": "{{ fetch-customer.body.name | upcase }}",
        "email": "{{ initial.email | downcase }}",
        "items": "{{ initial.items }}",
        "count": "{{ initial.items | size }}",
        "total": "{{ initial.total | times: 1.2 | round: 2 }}",
        "lastError": "{{ $errors[0].code | default: 'none' }}",
        "ok": "{{ fetch-customer.$meta.success }}",
        "note": "static text stays as it is",
    },
}


def rate(seconds: float) -> float:
    """Renders per second over about ``seconds``."""
    n, start = 0, time.perf_counter()
    while True:
        for _ in range(1000):
            render(INPUT, SCOPE)
        n += 1000
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 0.2
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    render(INPUT, SCOPE)  # warm the compile cache
    rates = sorted(rate(seconds) for _ in range(rounds))
    print(f"{rates[-1]:,.0f} renders/s best, {rates[len(rates) // 2]:,.0f} median "
          f"(input with 10 placeholders + 1 secret, {rounds} rounds of {seconds:g}s; the machine is shared, "
          "so the best round is the least disturbed one)")


if __name__ == "__main__":
    main()

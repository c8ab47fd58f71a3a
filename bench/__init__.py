"""Benchmarks: Flowtide against a hand-written Temporal baseline (``python bench/run.py``)."""

"""Benchmarks: each `bench_*.py` module measures Tessera against a reference in the same run."""

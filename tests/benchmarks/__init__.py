"""Benchmark suite of github-sync against its baselines: ``python -m tests.benchmarks`` (``make bench``)."""

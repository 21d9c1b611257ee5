"""Benchmarks for the issue targets: `python -m bench <name>` prints one JSON line."""

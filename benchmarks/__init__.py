"""Benchmarks: run by hand (`make bench` or `python -m benchmarks.<name>`), one result line each."""

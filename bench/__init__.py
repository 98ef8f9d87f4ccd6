"""Benchmarks: run by `python -m bench`, never as timed unit tests."""

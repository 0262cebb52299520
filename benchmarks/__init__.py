"""Benchmarks and their shared pieces (installed as ``tensorpanda.benchmarks``).

``solvers`` is the solver benchmark harness (run by ``python benchmarks/bench_solvers.py`` and
``tensorpanda bench``); ``planted`` is the planted-data generator it shares with the tests.
The scripts here run as ``python benchmarks/NAME.py``.
"""

"""Benchmarks and their shared pieces (installed as ``tensorpanda.benchmarks``).

The scripts here run as ``python benchmarks/NAME.py``; ``tensorpanda bench`` runs the solver
benchmark. The planted-data generator is shared with the tests.
"""

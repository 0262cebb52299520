"""The application layer: the ``tensorpanda`` command, the demo and the locality evaluation.

The only code that joins the core (:mod:`tensorpanda`) and the generators
(:mod:`tensorpanda.adapters`); neither of those imports it.
"""

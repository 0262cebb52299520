"""The application layer: the ``tensorpanda`` command, the demo and the locality evaluation.

The only code that joins the core (`tensorpanda`) and the generators
(`tensorpanda.adapters`); neither of those imports it.
"""

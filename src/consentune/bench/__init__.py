"""Benchmarks: each prints a table and writes JSON (``consentune bench …``)."""

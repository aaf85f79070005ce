"""Benchmarks of hybridflow against idiomatic Beam and DuckDB (``make bench``; never part of ``make test``)."""

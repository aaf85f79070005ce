"""Nexmark in ``make bench``: a generator following Beam's, the queries written
with hybridflow's public API, Beam's own queries and DuckDB SQL as baselines.

    python -m bench.nexmark.run --bids 1000000      # what `make bench-nexmark` runs
"""

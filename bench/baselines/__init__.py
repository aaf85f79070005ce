"""The same benchmark logic written without hybridflow: plain per-element Beam, and DuckDB SQL."""

"""InMemoryLookup: reference rows given in Python (tests, small static tables)."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence, Union

from hybridflow.errors import SchemaError
from hybridflow.transforms.lookups.base import LookupHandler

__all__ = ["InMemoryLookup"]


class InMemoryLookup(LookupHandler):
    """A lookup handler over rows held in memory (pickled with the pipeline).

    Args:
      rows: the reference rows: NamedTuples (their class is the schema) or
        dicts (then give ``schema``).
      key: the reference field that holds the key.
      schema: the reference row type; default: the class of the rows.
      cache_ttl: seconds (or ``"5m"``) an answer stays cached; 0: no cache.
      cache_size: most keys cached.
      clock: seconds as a float (default ``time.monotonic``), for tests.

    :meth:`put` changes a row of this instance, e.g. to watch the cache
    serve the old row until it expires.

    Example::

        >>> from hybridflow import CardProfile, InMemoryLookup
        >>> from hybridflow.testing import START
        >>> handler = InMemoryLookup([CardProfile("c1", 3, 20.0, 1.5, ["US"], START)], key="card_id")
        >>> with handler:
        ...     print(handler.cached_lookup("c1")["amount_mean"], handler.cached_lookup("c2"))
        20.0 None
    """

    def __init__(
        self,
        rows: Sequence[Any],
        key: str,
        schema: Optional[Any] = None,
        cache_ttl: Union[float, str] = 0,
        cache_size: int = 100_000,
        clock: Optional[Callable[[], float]] = None,
    ):
        rows = list(rows)
        if schema is None:
            if not rows or isinstance(rows[0], Mapping):
                raise SchemaError("InMemoryLookup: give schema=... (a NamedTuple class) for dict or empty rows")
            schema = type(rows[0])
        super().__init__(schema, key, cache_ttl=cache_ttl, cache_size=cache_size, clock=clock)
        self._rows: dict = {}
        for row in rows:
            self.put(row)

    def put(self, row: Any) -> None:
        """Adds or replaces the row of its key."""
        values = dict(row) if isinstance(row, Mapping) else row._asdict()
        self._rows[values[self._key]] = values

    def lookup(self, key: Any) -> Optional[Mapping[str, Any]]:
        row = self._rows.get(key)
        return dict(row) if row is not None else None

    def __repr__(self):
        return f"InMemoryLookup({len(self._rows)} rows, key={self._key!r})"

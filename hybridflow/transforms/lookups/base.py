"""The lookup-handler interface and its in-process TTL cache."""

from __future__ import annotations

import abc
import collections
import threading
import time
from typing import Any, Callable, Mapping, Optional, Union

import apache_beam as beam
from apache_beam.transforms.enrichment import EnrichmentSourceHandler

from hybridflow.durations import parse_duration
from hybridflow.errors import SchemaError
from hybridflow.schemas import fields_of

__all__ = ["LookupHandler", "TTLCache"]

_MISSING = object()


class TTLCache:
    """A bounded, least-recently-used map whose entries expire ``ttl`` seconds
    after they were stored. ``clock`` returns seconds (default ``time.monotonic``)."""

    def __init__(self, ttl: float, max_entries: int, clock: Callable[[], float]):
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Any) -> Any:
        """The cached value, or ``_MISSING`` (absent or expired)."""
        with self._lock:
            entry = self._entries.get(key, _MISSING)
            if entry is not _MISSING:
                expires, value = entry
                if self._clock() < expires:
                    self._entries.move_to_end(key)
                    self.hits += 1
                    return value
                del self._entries[key]
            self.misses += 1
            return _MISSING

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._entries[key] = (self._clock() + self._ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def __len__(self):
        return len(self._entries)


class LookupHandler(EnrichmentSourceHandler[Any, beam.Row], abc.ABC):
    """Looks up the reference row of a key, with an in-process TTL cache.

    Subclasses pass the reference row type (``schema``) and its key field
    (``key``) to this constructor and implement :meth:`lookup`; clients are opened in
    :meth:`open` (called from ``__enter__``, i.e. the DoFn's ``setup``) and
    released in :meth:`close`. Only configuration is pickled: the cache and
    clients are created on the worker.

    Answers, missing keys included, are cached for ``cache_ttl`` seconds (0
    turns the cache off), at most ``cache_size`` keys, least recently used
    first out. ``clock`` (seconds, default ``time.monotonic``) is injectable
    for tests; it must be picklable (a module-level function).

    A handler is also a plain Beam ``EnrichmentSourceHandler``: in
    ``apache_beam.transforms.enrichment.Enrichment(handler)`` it reads the key
    from the request field named :attr:`key` and answers ``beam.Row`` (empty
    when the key is missing).
    """

    #: attributes created on the worker, never pickled
    _RUNTIME_ATTRS: tuple = ("_cache",)

    def __init__(
        self,
        schema: Any,
        key: str,
        cache_ttl: Union[float, str] = 0,
        cache_size: int = 100_000,
        clock: Optional[Callable[[], float]] = None,
    ):
        names = [f.name for f in fields_of(schema)]
        if key not in names:
            raise SchemaError(
                f"{type(self).__name__}: key {key!r} is not a field of {schema!r} ({', '.join(names)})"
            )
        self._schema = schema
        self._key = key
        try:
            self._cache_ttl = parse_duration(cache_ttl)
        except ValueError as exc:
            raise SchemaError(f"{type(self).__name__}.cache_ttl: {exc}") from None
        if int(cache_size) < 1:
            raise SchemaError(f"{type(self).__name__}.cache_size must be >= 1, got {cache_size!r}")
        self._cache_size = int(cache_size)
        self._clock = clock
        self._cache: Optional[TTLCache] = None

    # -- what a backend provides -------------------------------------------

    @property
    def schema(self) -> Any:
        """The reference row type (a NamedTuple class or Beam row type)."""
        return self._schema

    @property
    def key(self) -> str:
        """The reference field that holds the key."""
        return self._key

    @abc.abstractmethod
    def lookup(self, key: Any) -> Optional[Mapping[str, Any]]:
        """The reference row of ``key`` as a dict of its fields, or None.

        Raise :class:`~hybridflow.errors.RecordError` for a row that exists
        but cannot be read (it becomes a dead letter in ``Enrich``)."""

    def open(self) -> None:
        """Creates clients; called on the worker before the first lookup."""

    def close(self) -> None:
        """Releases what :meth:`open` created."""

    # -- the cached lookup ---------------------------------------------------

    def fields(self) -> list:
        return fields_of(self.schema)

    def cached_lookup(self, key: Any) -> Optional[Mapping[str, Any]]:
        """:meth:`lookup` through the cache (open the handler first)."""
        return self.lookup_with_cache_status(key)[0]

    def lookup_with_cache_status(self, key: Any) -> tuple[Optional[Mapping[str, Any]], Optional[bool]]:
        """``(row, cache_hit)`` of :meth:`cached_lookup`; ``cache_hit`` is None
        when the cache is off. (Beam's Enrichment may call a handler on a
        thread of its own, where Beam metrics are not recorded: the caller
        counts hits and misses.)"""
        cache = self._cache
        if cache is None:
            return self.lookup(key), None
        value = cache.get(key)
        if value is not _MISSING:
            return value, True
        value = self.lookup(key)
        cache.put(key, value)
        return value, False

    @property
    def caching(self) -> bool:
        """Whether the handler is open with its cache on."""
        return self._cache is not None

    @property
    def cache_stats(self) -> Mapping[str, int]:
        """Hits and misses of the cache since the handler was opened."""
        cache = self._cache
        return {"hits": cache.hits, "misses": cache.misses} if cache else {"hits": 0, "misses": 0}

    def __enter__(self):
        if self._cache_ttl > 0:
            self._cache = TTLCache(self._cache_ttl, self._cache_size, self._clock or time.monotonic)
        self.open()
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        try:
            self.close()
        finally:
            self._cache = None
        return None

    # -- Beam's EnrichmentSourceHandler -------------------------------------

    def __call__(self, request, *args, **kwargs):
        row = self.cached_lookup(getattr(request, self.key))
        return request, beam.Row(**row) if row is not None else beam.Row()

    def get_cache_key(self, request) -> str:
        return f"{self.key}: {getattr(request, self.key)}"

    def __getstate__(self):
        state = dict(self.__dict__)
        for name in self._RUNTIME_ATTRS:
            state[name] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

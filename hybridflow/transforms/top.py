"""TopPerWindow: the rows with the largest value of a field per window (and key).

The selection rule lives in one Beam-free object, :class:`TopRows`, used by
both backends: records fold into it as an accumulator of the windowed engine
behind :class:`~hybridflow.transforms.WindowedAggregate` (batch: one pane per
window; streaming: the pane fires when the watermark passes the window's
end, records later than that reach the ``late`` output), and Arrow tables go
through its :meth:`TopRows.select`, which ranks all groups of a table at once
with ``pyarrow.compute.sort_indices``.

The rule (SQL's ``RANK() <= k`` or ``ROW_NUMBER() <= k`` over ``by DESC``):

- ``ties="all"``: every row whose rank is at most ``k``, the rank being one
  plus the number of rows with a strictly larger value; so ``k=1`` gives all
  rows sharing the maximum.
- ``ties="first"``: exactly ``min(k, n)`` rows; among equal values the rows
  come in ascending order of their other fields, compared field by field in
  the record's order (null first, then NaN, then the values; list fields
  are not compared). The choice is therefore the same on every runner and backend.

Rows whose ``by`` value is null or NaN are not candidates; they are counted
in ``hybridflow/top_not_ranked``.
"""

from __future__ import annotations

import enum
from typing import Any, Mapping, Sequence, Union

import apache_beam as beam
from apache_beam.typehints.row_type import RowTypeConstraint
from apache_beam.utils.timestamp import Timestamp

from hybridflow.errors import SchemaError
from hybridflow.metrics import counter
from hybridflow.schemas import LateRecord, fields_of
from hybridflow.transforms.aggregate import (
    EventTimeWindows,
    KeyLike,
    Keys,
    _Result,
    aggregate_records,
    key_fields,
)
from hybridflow.transforms.windows import TriggerSpec, WindowSpec, window_spec

__all__ = ["TopPerWindow", "TopRows", "Ties"]

_WINDOW = ("window_start", "window_end")
_ORDERABLE = (int, float, str, bytes, bool, Timestamp)


class Ties(str, enum.Enum):
    """Which rows :class:`TopPerWindow` keeps when values tie at the k-th place."""

    ALL = "all"  #: every row ranked k or better (RANK() <= k)
    FIRST = "first"  #: exactly k rows, ties broken by the other fields, ascending


def _sort_key(values):
    """Ascending tie-break order of field values: null, then NaN, then the
    values (the order of Arrow's sort with nulls at the start)."""
    return tuple((0,) if v is None else (1,) if v != v else (2, v) for v in values)


class TopRows:
    """Which rows of one group (window and key) are its top ``k`` by ``by``.

    Per record, the accumulator interface of the windowed engine
    (``create``/``add``/``merge``/``extract``): the state is a list of
    candidate rows, pruned to the rule as it grows (a row that ranks below
    ``k`` in part of a group ranks below ``k`` in the whole group too).
    Per table, :meth:`select` gives the selected rows of every group at once.
    ``order`` names the fields that break ties (see the module docstring).
    """

    def __init__(self, by: str, k: int, ties: Ties, order: Sequence[str]):
        self.by = by
        self.k = k
        self.ties = ties
        self.order = tuple(order)
        self._limit = 4 * k + 64  # prune when a list grows past this

    # -- per record ---------------------------------------------------------

    def ranked(self, value) -> bool:
        return value is not None and value == value  # NaN != NaN

    def create(self) -> list:
        return []

    def add(self, acc: list, record) -> list:
        if self.ranked(getattr(record, self.by)):
            acc.append(record)
            if len(acc) > self._limit:
                acc[:] = self._top(acc)
        return acc

    def merge(self, accs) -> list:
        rows: list = []
        for acc in accs:
            rows.extend(acc)
        return self._top(rows)

    def extract(self, acc: list) -> list:
        """The selected rows, best first."""
        return self._top(acc)

    def _top(self, rows: list) -> list:
        by = self.by
        rows = sorted(rows, key=lambda r: _sort_key(getattr(r, f) for f in self.order))
        rows.sort(key=lambda r: getattr(r, by), reverse=True)  # stable: ties keep the order above
        if len(rows) <= self.k:
            return rows
        if self.ties is Ties.FIRST:
            return rows[: self.k]
        last = getattr(rows[self.k - 1], by)
        end = self.k
        while end < len(rows) and getattr(rows[end], by) == last:
            end += 1
        return rows[:end]

    # -- per table ----------------------------------------------------------

    def ranked_mask(self, table):
        """Per row of ``table``: whether its ``by`` value ranks (not null, not NaN)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        from hybridflow.columnar import one_array

        value = one_array(table.column(self.by))
        keep = value.is_valid()
        if pa.types.is_floating(value.type):
            keep = pc.and_(keep, pc.invert(pc.is_nan(value).fill_null(False)))
        return keep.to_numpy(zero_copy_only=False)

    def select(self, table, gid):
        """Indices (numpy) of the selected rows of ``table`` whose rows
        belong to groups ``gid``; rows that are not ranked are never selected."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        from hybridflow.columnar import one_array

        candidates = np.flatnonzero(self.ranked_mask(table))
        if not len(candidates):
            return candidates
        sub = table.take(pa.array(candidates))
        columns = {"__gid": pa.array(np.asarray(gid)[candidates], pa.int64()), "__by": one_array(sub.column(self.by))}
        keys = [("__gid", "ascending"), ("__by", "descending")]
        for i, name in enumerate(self.order):
            columns[f"__o{i}"] = one_array(sub.column(name))
            keys.append((f"__o{i}", "ascending"))
        order = pc.sort_indices(pa.table(columns), sort_keys=keys, null_placement="at_start").to_numpy()
        groups = columns["__gid"].to_numpy()[order]
        values = columns["__by"].take(pa.array(order))
        n = len(order)
        positions = np.arange(n)
        new_group = np.ones(n, dtype=bool)
        new_group[1:] = groups[1:] != groups[:-1]
        group_start = np.maximum.accumulate(np.where(new_group, positions, 0))
        if self.ties is Ties.FIRST:
            rank = positions - group_start + 1
        else:
            new_value = new_group.copy()
            new_value[1:] |= pc.not_equal(values.slice(1), values.slice(0, n - 1)).to_numpy(zero_copy_only=False)
            rank = np.maximum.accumulate(np.where(new_value, positions, 0)) - group_start + 1
        return candidates[order[rank <= self.k]]


class _FieldWindows:
    """The window of a row that already names it (``window_start``/``window_end``)."""

    merging = False

    def __call__(self, record, micros: int):
        return [(record.window_start.micros, record.window_end.micros)]


class _TopRowsOut:
    """The output rows of one window: the selected records, with the window added."""

    def __init__(self, top: TopRows, names: Sequence[str], add_window: bool):
        self._top = top
        self._names = tuple(names)
        self._add_window = add_window

    def __call__(self, key, start, end, timing, index, acc) -> list:
        window = {"window_start": Timestamp(micros=start), "window_end": Timestamp(micros=end)}
        rows = []
        for record in self._top.extract(acc):
            values = {n: getattr(record, n) for n in self._names}
            if self._add_window:
                values.update(window)
            rows.append(beam.Row(**values))
        return rows


class _CountNotRanked(beam.DoFn):
    """Counts the records whose ``by`` value is null or NaN (never selected); passes all on."""

    def __init__(self, top: TopRows):
        self._top = top

    def setup(self):
        self._skipped = counter("top_not_ranked")

    def process(self, record):
        if not self._top.ranked(getattr(record, self._top.by)):
            self._skipped.inc()
        yield record


class TopPerWindow(beam.PTransform):
    """Keeps, per event-time window (and key), the rows with the largest ``by``.

    With ``window=...`` each record is assigned to its fixed or sliding
    windows by its event time and the output rows are the selected records
    with ``window_start`` and ``window_end`` added. Without it, the input
    rows must already name their window (``window_start``, ``window_end``:
    the output of :class:`~hybridflow.transforms.WindowedAggregate`), and the
    output rows are the selected input rows unchanged. Tie rule: see
    :class:`Ties`; rows whose ``by`` is null or NaN are never selected
    (counted in ``hybridflow/top_not_ranked``).

    Bounded input gives each window's selection once; unbounded input gives
    it when the watermark passes the end of the window, and records that
    arrive after that go to the ``late`` output
    (:class:`~hybridflow.schemas.LateRecord`). Arrow tables
    (:mod:`hybridflow.columnar`) are ranked vectorized, with the same rows.

    Args:
      by: the field to rank by (int, float, str, bytes, bool or Timestamp).
      k: how many places to keep (1: the maximum).
      ties: ``"all"`` (every row ranked k or better) or ``"first"`` (exactly
        k rows; ties broken by the rows' other fields, ascending).
      key: ``None`` (one ranking per window), a field, or a list of fields
        (one ranking per window and key).
      window: a fixed or sliding window spec (``"fixed:10s"``,
        ``"sliding:10s/2s"``); omit it for rows that name their window.

    Returns a tuple-like result ``(rows, late)`` with attributes ``.rows``
    and ``.late``.
    """

    def __init__(
        self,
        by: str,
        k: int = 1,
        ties: Union[Ties, str] = Ties.ALL,
        key: KeyLike = None,
        window: Union[WindowSpec, Mapping[str, Any], str, None] = None,
    ):
        super().__init__()
        if not isinstance(by, str) or not by:
            raise SchemaError(f"TopPerWindow: by={by!r}; name the field to rank by, e.g. by='price'")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise SchemaError(f"TopPerWindow: k={k!r}; give a whole number of places >= 1")
        try:
            self._ties = Ties(ties)
        except ValueError:
            raise SchemaError(
                f"TopPerWindow: ties={ties!r}; use one of {', '.join(t.value for t in Ties)}"
            ) from None
        self._by = by
        self._k = k
        self._keys = Keys(key_fields(key, "TopPerWindow"))
        self._window = window_spec(window) if window is not None else None
        if self._window is not None and self._window.merging:
            raise SchemaError(
                "TopPerWindow: session windows are not supported; use fixed:SIZE or sliding:SIZE/PERIOD"
            )

    def _types(self, fields) -> tuple[TopRows, RowTypeConstraint]:
        by_name = {f.name: f for f in fields}
        names = ", ".join(by_name)
        if self._by not in by_name:
            raise SchemaError(f"TopPerWindow: by={self._by!r} is not a field of the input ({names})")
        by = by_name[self._by]
        if by.is_list or by.type not in _ORDERABLE:
            raise SchemaError(
                f"TopPerWindow: by={self._by!r} has type {by.type.__name__}{'[]' if by.is_list else ''}, "
                "which has no order; rank by an int, float, str, bytes, bool or Timestamp field"
            )
        self._keys.check(fields, "TopPerWindow")
        has_window = [n for n in _WINDOW if n in by_name]
        if self._window is None and len(has_window) < 2:
            raise SchemaError(
                "TopPerWindow: the input rows name no window (window_start, window_end); "
                "give window='fixed:SIZE' or 'sliding:SIZE/PERIOD', or rank WindowedAggregate's output"
            )
        if self._window is not None and has_window:
            raise SchemaError(
                f"TopPerWindow: the input already has {has_window}; drop window=... to rank per the "
                "rows' own windows, or rename those fields"
            )
        top = TopRows(self._by, self._k, self._ties, [f.name for f in fields if not f.is_list])
        pairs = [(f.name, f.hint) for f in fields]
        if self._window is not None:
            pairs += [(n, Timestamp) for n in _WINDOW]
        return top, RowTypeConstraint.from_fields(pairs)

    def expand(self, pcoll):
        from hybridflow.columnar import is_columnar

        if is_columnar(pcoll):
            return self._expand_columnar(pcoll)
        fields = fields_of(pcoll.element_type)
        top, row_type = self._types(fields)
        assign = EventTimeWindows(self._window) if self._window is not None else _FieldWindows()
        window = self._window if self._window is not None else _FieldWindows()
        counted = pcoll | "CountNotRanked" >> beam.ParDo(_CountNotRanked(top)).with_output_types(pcoll.element_type)
        result = aggregate_records(
            counted, self._keys, window, assign, top,
            _TopRowsOut(top, [f.name for f in fields], self._window is not None),
            row_type, TriggerSpec(), 0, self.label,
        )
        return _TopResult(result.aggregates, result.late)

    def _expand_columnar(self, pcoll):
        from hybridflow.columnar.top import TopTables

        hint = pcoll.element_type
        if not pcoll.is_bounded:
            raise SchemaError("TopPerWindow: Arrow-table input must be bounded")
        top, row_type = self._types(hint.fields)
        if self._window is not None and hint.timestamp_field is None:
            raise SchemaError(
                "TopPerWindow: the Arrow tables carry no event-time field; parse them with "
                "ParseRecords(..., timestamp_field=...) or declare arrow_tables(T, timestamp_field)"
            )
        rows = pcoll | "Top" >> TopTables(top, self._keys.names, self._window, hint.timestamp_field, row_type)
        late = pcoll.pipeline | "NoLateRecords" >> beam.Create([]).with_output_types(LateRecord)
        return _TopResult(rows, late)


class _TopResult(_Result):
    """``(rows, late)`` with attribute access."""

    @property
    def rows(self):
        return self[0]


"""Vectorized rule evaluation for ThresholdAlerts on Arrow tables.

Each rule is evaluated on whole columns to find the rows that can fire
(a superset of the hits: comparisons are made with a margin); only those
rows become records and go through the per-element evaluator itself, so the
alerts (values, messages, ids) and counters are exactly the per-element
ones. Alerts are few: the output is ordinary :class:`~hybridflow.schemas.Alert`
records, and the cooldown runs per element.
"""

from __future__ import annotations

import apache_beam as beam

from hybridflow.columnar import table_to_records

__all__ = ["EvaluateTables"]


def _candidates(rule, table):
    """Rows where ``rule`` may fire (numpy bool)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from hybridflow.transforms.alerts import NotInRule, Rule, ZScoreRule

    n = table.num_rows

    def floats(name):
        column = table.column(name)
        return column.cast(pa.float64()).to_numpy(zero_copy_only=False) if column.null_count == 0 else (
            column.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
        )

    def valid(name):
        return table.column(name).is_valid().to_numpy(zero_copy_only=False)

    def history(count_field, min_count):
        if count_field is None:
            return np.ones(n, dtype=bool)
        column = table.column(count_field)
        return pc.greater_equal(column, min_count).fill_null(False).to_numpy(zero_copy_only=False)

    with np.errstate(invalid="ignore", divide="ignore"):
        if isinstance(rule, Rule):
            value = floats(rule.field)
            # a constant, or the per-record threshold column (null: NaN, never a candidate)
            t = float(rule.threshold) if rule.threshold_field is None else floats(rule.threshold_field)
            margin = 1e-9 * np.abs(t) + 1e-300
            loose = {">": value > t - margin, ">=": value >= t - margin, "<": value < t + margin,
                     "<=": value <= t + margin, "==": np.abs(value - t) <= margin, "!=": value == value}[rule.op]
            # a NaN that is a value, not a null, is compared by the per-element evaluator itself
            nan_values = [np.isnan(value) & valid(rule.field)]
            if rule.threshold_field is not None:
                nan_values.append(np.isnan(t) & valid(rule.threshold_field) & valid(rule.field))
            return loose | np.logical_or.reduce(nan_values)
        if isinstance(rule, ZScoreRule):
            value, mean = floats(rule.value_field), floats(rule.mean_field)
            sd = np.maximum(np.nan_to_num(floats(rule.stddev_field), nan=0.0), rule.min_stddev)
            z = (value - mean) / sd
            margin = 1e-9 * abs(rule.threshold) + 1e-300
            return (z >= rule.threshold - margin) & history(rule.count_field, rule.min_count)
        if isinstance(rule, NotInRule):
            values = table.column(rule.field)
            known = table.column(rule.set_field)
            present = values.is_valid().to_numpy(zero_copy_only=False) & known.is_valid().to_numpy(zero_copy_only=False)
            flat = pc.list_flatten(known)
            parents = pc.list_parent_indices(known).to_numpy(zero_copy_only=False)
            same = pc.equal(flat, values.take(pa.array(parents))).fill_null(False).to_numpy(zero_copy_only=False)
            member = np.bincount(parents[same], minlength=n) > 0
            return present & ~member & history(rule.count_field, rule.min_count)
    return np.ones(n, dtype=bool)


class _EvaluateTablesFn(beam.DoFn):
    def __init__(self, evaluator, rules, record_type):
        self._evaluator = evaluator
        self._rules = rules
        self._record_type = record_type

    def setup(self):
        self._evaluator.setup()

    def process(self, table, timestamp=beam.DoFn.TimestampParam):
        import numpy as np
        import pyarrow as pa

        mask = np.zeros(table.num_rows, dtype=bool)
        for rule in self._rules:
            mask |= _candidates(rule, table)
        self._evaluator._in.inc(table.num_rows - int(mask.sum()))
        if mask.any():
            for record in table_to_records(table.filter(pa.array(mask)), self._record_type):
                yield from self._evaluator.process(record, timestamp)


class EvaluateTables(beam.PTransform):
    """Arrow tables of rows -> Alert records (the per-element evaluator on candidate rows)."""

    def __init__(self, evaluator, rules, record_type):
        super().__init__()
        self._fn = _EvaluateTablesFn(evaluator, rules, record_type)

    def expand(self, pcoll):
        from hybridflow.schemas import Alert

        return pcoll | "Evaluate" >> beam.ParDo(self._fn).with_output_types(Alert)

"""Filter, Select and Derive: records in, records out, by expressions.

The expressions (:mod:`hybridflow.expressions`) are checked against the input
record type when the transform is applied, so an unknown field or a type
mismatch fails at construction. On a PCollection of records each record is
evaluated by the compiled per-record evaluator; on a PCollection of Arrow
tables (:func:`~hybridflow.columnar.arrow_tables`) each table is evaluated by
``pyarrow.compute`` kernels, with the same results. A table that some row
cannot evaluate (an integer overflow) is evaluated record by record, so that
exactly those rows become dead letters.

The transforms are stateless element-wise steps: element timestamps and
windows pass through, bounded or unbounded alike.
"""

from __future__ import annotations

import operator
import typing
from typing import Any, Optional, Sequence

import apache_beam as beam

from hybridflow.errors import SchemaError
from hybridflow.expressions import Expression, ExpressionError
from hybridflow.metrics import counter
from hybridflow.schemas import DeadLetter, fields_of, register
from hybridflow.transforms.dead_letters import DEAD_LETTERS, DeadLetterCounter

__all__ = ["Filter", "Select", "Derive"]


_RECORD_TYPES: dict = {}


def record_type(name: str, fields: Sequence[tuple[str, Any]]) -> type:
    """The NamedTuple type ``name`` with ``fields``, registered with RowCoder.

    One class per (name, fields) in a process; its records pickle by that
    spec (not by a module path, which a generated class has none of), so
    workers and pickled outputs rebuild the same type.
    """
    key = (name, tuple(fields))
    cls = _RECORD_TYPES.get(key)
    if cls is None:
        cls = typing.NamedTuple(name, list(fields))
        cls.__reduce__ = lambda self: (_rebuild, (key, tuple(self)))
        cls.__module__ = __name__
        register(cls)
        cls = _RECORD_TYPES.setdefault(key, cls)
    return cls


def _rebuild(key, values):
    return record_type(*key)(*values)


def _input_type(pcoll) -> tuple[Any, bool, Optional[str]]:
    """(record type, columnar?, timestamp field of the tables) of ``pcoll``."""
    from hybridflow.columnar import is_columnar

    if is_columnar(pcoll):
        hint = pcoll.element_type
        if hint.record_type is None:
            raise SchemaError(
                "expressions need typed Arrow tables: parse them first (ParseRecords) or "
                "declare the type with .with_output_types(arrow_tables(RecordType))"
            )
        return hint.record_type, True, hint.timestamp_field
    fields_of(pcoll.element_type)  # a SchemaError naming the type when it is not a record type
    return pcoll.element_type, False, None


class _ExpressionFn(beam.DoFn):
    """Evaluates ``outputs`` (name -> expression text, or None to keep the
    field) and the optional ``predicate`` of records or Arrow tables."""

    def __init__(self, stage, input_type, predicate, outputs, output_type, columnar):
        self._stage = stage
        self._input_type = input_type
        self._predicate_text = predicate
        self._output_texts = outputs
        self._output_type = output_type
        self._columnar = columnar

    def setup(self):
        # compiled here: only the texts and types are pickled
        self._predicate = None if self._predicate_text is None else Expression(self._predicate_text, self._input_type)
        self._outputs = (
            None
            if self._output_texts is None
            else [(n, None if t is None else Expression(t, self._input_type)) for n, t in self._output_texts]
        )
        self._test = None if self._predicate is None else self._predicate.evaluate
        self._values = None if self._outputs is None else [
            operator.attrgetter(n) if e is None else e.evaluate for n, e in self._outputs
        ]
        self._dead = DeadLetterCounter()
        self._in = counter("records_in")
        self._out = counter("records_out")
        self._filtered = counter("filtered")
        if self._columnar:
            from hybridflow.io.files import arrow_schema

            self._schema = arrow_schema(self._output_type)

    def start_bundle(self):
        # counted per bundle: a Beam counter per record costs more than a simple predicate
        self._seen = self._kept = self._dropped = 0

    def finish_bundle(self):
        self._in.inc(self._seen)
        self._out.inc(self._kept)
        self._filtered.inc(self._dropped)

    # per record

    def _one(self, record):
        if self._test is not None and self._test(record) is not True:
            return None
        if self._values is None:
            return record
        return self._output_type(*[value(record) for value in self._values])

    def _evaluate(self, record):
        """(output record or None when filtered out, dead letter or None)."""
        try:
            return self._one(record), None
        except ExpressionError as exc:
            return None, self._dead.dead_letter(self._stage, exc.reason, f"{self._stage}: {exc}", record)

    # Arrow tables

    def _table(self, table):
        import pyarrow as pa

        if self._predicate is not None:
            mask = self._predicate.evaluate_table(table)
            table = table.filter(mask, null_selection_behavior="drop")
        if self._outputs is None:
            return table
        columns = [table.column(n) if e is None else e.evaluate_table(table) for n, e in self._outputs]
        return pa.table([c.cast(f.type) for c, f in zip(columns, self._schema)], schema=self._schema)

    def process(self, element):
        if self._columnar:
            yield from self._process_table(element)
        else:
            self._seen += 1
            out, dead = self._evaluate(element)
            if out is not None:
                self._kept += 1
                yield out
            elif dead is not None:
                yield dead
            else:
                self._dropped += 1

    def _process_table(self, element):
        import pyarrow as pa

        from hybridflow.columnar import records_to_table, table_to_records

        self._seen += element.num_rows
        dead = []
        try:
            out = self._table(element)
        except (pa.ArrowInvalid, ExpressionError):
            # some row cannot be evaluated: find it record by record
            results = [self._evaluate(r) for r in table_to_records(element, self._input_type)]
            dead = [d for _, d in results if d is not None]
            out = records_to_table([r for r, _ in results if r is not None], self._output_type)
            yield from dead
        self._dropped += element.num_rows - out.num_rows - len(dead)
        self._kept += out.num_rows
        yield out


class _ExpressionTransform(beam.PTransform):
    """Shared expand(): types the output, picks the backend, tags dead letters.

    After expansion ``can_fail`` says whether some record can fail an
    expression (so become a dead letter): integer arithmetic, ``round``.
    """

    can_fail: Optional[bool] = None

    def _plan(self, input_type) -> tuple[Optional[str], Optional[list], Any]:
        """(predicate text, outputs, output record type) for ``input_type``."""
        raise NotImplementedError

    def expand(self, pcoll):
        from hybridflow.columnar import arrow_tables

        input_type, columnar, ts = _input_type(pcoll)
        predicate, outputs, output_type = self._plan(input_type)
        texts = [predicate] if predicate is not None else [t for _, t in outputs if t is not None]
        self.can_fail = any(Expression(t, input_type).can_fail for t in texts)
        if columnar:
            ts = self._timestamp_field(ts, outputs)
            element_type = arrow_tables(output_type, ts)
        else:
            element_type = output_type
        fn = _ExpressionFn(self.label, input_type, predicate, outputs, output_type, columnar)
        result = pcoll | "Evaluate" >> beam.ParDo(fn).with_output_types(element_type).with_outputs(
            DEAD_LETTERS, main="records"
        )
        result[DEAD_LETTERS].element_type = DeadLetter
        return result

    def _timestamp_field(self, ts, outputs):
        """The event-time column of the output tables: the input's, kept or renamed."""
        if ts is None or outputs is None:
            return ts
        for name, text in outputs:
            if (text is None and name == ts) or (text is not None and text.strip() == ts):
                return name
        raise SchemaError(
            f"{self.label}: the Arrow tables' event-time field {ts!r} carries the records' event "
            f"times; keep it in the output (for example Select(..., {ts!r}))"
        )


class Filter(_ExpressionTransform):
    """Keeps the records for which ``predicate`` is true.

    A record whose predicate is false or null is filtered out and counted
    (``hybridflow/filtered``, exported as ``filtered_records``); one whose predicate cannot be
    evaluated becomes a dead letter (reason ``expression_error``). The
    language is described in :mod:`hybridflow.expressions`.

    Args:
      predicate: a boolean expression, e.g. ``"price > 100 and auction % 123 == 0"``.

    Returns a tuple-like result ``(records, dead_letters)`` with attributes
    ``.records`` (of the input type) and ``.dead_letters``.

    Example::

        >>> import apache_beam as beam
        >>> from hybridflow import Filter
        >>> from hybridflow.testing import CreateEvents, batch_pipeline, transactions
        >>> with batch_pipeline() as p:
        ...     txns = p | CreateEvents(transactions([("c1", 10.0, 5), ("c2", 300.0, 6)]))
        ...     big = txns | Filter("amount > 100 and card_id in ('c1', 'c2')")
        ...     _ = big.records | beam.Map(lambda t: print(t.card_id, t.amount))
        c2 300.0
    """

    def __init__(self, predicate: str):
        super().__init__()
        if not isinstance(predicate, str) or not predicate.strip():
            raise SchemaError(f"Filter: predicate={predicate!r}; give a boolean expression, e.g. 'amount > 100'")
        self._predicate = predicate

    def _plan(self, input_type):
        expression = Expression(self._predicate, input_type)
        if expression.type is not bool:
            kind = "null" if expression.type is type(None) else expression.type.__name__
            raise SchemaError(
                f"Filter: predicate {self._predicate!r} is a {kind}, "
                "not a boolean; compare it, e.g. 'amount > 100'"
            )
        return self._predicate, None, input_type


def _check_names(stage: str, names) -> None:
    for name in names:
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
            raise SchemaError(f"{stage}: output field {name!r} must be an identifier not starting with '_'")


class Select(_ExpressionTransform):
    """Projects, renames and computes fields: the output records have exactly
    the ``fields`` (kept as they are) then the ``computed`` ones, in order.

    ``Select("auction", "price", euro="price * 0.89", bidder_id="bidder")``
    keeps ``auction`` and ``price``, adds ``euro`` and renames ``bidder``.
    The output is a new record type (a NamedTuple registered with RowCoder)
    whose field types are inferred from the expressions; a record an
    expression cannot evaluate becomes a dead letter.

    Args:
      fields: input fields to keep, by name.
      computed: output field name -> expression (a field name renames it).

    Returns a tuple-like result ``(records, dead_letters)``.

    Example::

        >>> import apache_beam as beam
        >>> from hybridflow import Select
        >>> from hybridflow.testing import CreateEvents, batch_pipeline, transactions
        >>> with batch_pipeline() as p:
        ...     txns = p | CreateEvents(transactions([("c1", 10.0, 5)]))
        ...     out = txns | Select(
        ...         "card_id", card="merchant_id", cents="round(amount * 100)", minute="minute(event_time)")
        ...     _ = out.records | beam.Map(print)
        SelectOfTransaction(card_id='c1', card='m-1', cents=1000.0, minute=0)
    """

    def __init__(self, *fields: str, **computed: str):
        super().__init__()
        if not fields and not computed:
            raise SchemaError("Select: name at least one field, e.g. Select('auction', euro='price * 0.89')")
        self._fields = list(fields)
        self._computed = dict(computed)

    def _plan(self, input_type):
        stage = "Select"
        available = {f.name: f for f in fields_of(input_type)}
        names = self._fields + list(self._computed)
        _check_names("Select", names)
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise SchemaError(f"{stage}: output fields {duplicates} are named twice")
        types = []
        for name in self._fields:
            if name not in available:
                raise SchemaError(
                    f"{stage}: {name!r} is not an input field (fields available: {', '.join(available)}); "
                    f"compute a new field with a keyword: Select(..., {name}='expression')"
                )
            types.append((name, _annotation(available[name])))
        for name, text in self._computed.items():
            types.append((name, Expression(text, input_type).field_type))
        outputs = [(n, None) for n in self._fields] + list(self._computed.items())
        return None, outputs, record_type(f"{self.__class__.__name__}Of{_name(input_type)}", types)


class Derive(_ExpressionTransform):
    """Keeps every input field and adds or replaces the ``computed`` ones.

    ``Derive(euro="price * 0.89")`` appends ``euro``; a computed field with
    an input field's name replaces it in place. Every expression reads the
    input record (not another computed field). The output is a new record
    type with inferred field types; a record an expression cannot evaluate
    becomes a dead letter.

    Args:
      computed: output field name -> expression.

    Returns a tuple-like result ``(records, dead_letters)``.

    Example::

        >>> import apache_beam as beam
        >>> from hybridflow import Derive
        >>> from hybridflow.testing import CreateEvents, batch_pipeline, transactions
        >>> with batch_pipeline() as p:
        ...     txns = p | CreateEvents(transactions([("c1", 10.0, 5)]))
        ...     out = txns | Derive(euro="round(amount * 0.89, 2)", card_id="upper(card_id)")
        ...     _ = out.records | beam.Map(lambda t: print(t.card_id, t.euro, t._fields[-1]))
        C1 8.9 euro
    """

    def __init__(self, **computed: str):
        super().__init__()
        if not computed:
            raise SchemaError("Derive: give at least one field, e.g. Derive(euro='price * 0.89')")
        self._computed = dict(computed)

    def _plan(self, input_type):
        fields = fields_of(input_type)
        _check_names("Derive", self._computed)
        computed = {n: Expression(t, input_type) for n, t in self._computed.items()}
        types = [(f.name, computed[f.name].field_type if f.name in computed else _annotation(f)) for f in fields]
        names = {f.name for f in fields}
        types += [(n, e.field_type) for n, e in computed.items() if n not in names]
        outputs = [(n, self._computed.get(n)) for n, _ in types]
        return None, outputs, record_type(f"{self.__class__.__name__}Of{_name(input_type)}", types)

    def _timestamp_field(self, ts, outputs):
        if ts is None or ts not in self._computed:
            return ts
        return super()._timestamp_field(ts, outputs)


def _name(input_type) -> str:
    return getattr(input_type, "__name__", "Row")


def _annotation(field) -> Any:
    tp = list[field.type] if field.is_list else field.type
    return Optional[tp] if field.optional else tp

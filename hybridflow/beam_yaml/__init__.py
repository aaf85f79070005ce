"""hybridflow's transforms in Beam YAML pipelines.

Include the shipped providers file (:data:`PROVIDERS_FILE`; ``python -m
hybridflow.beam_yaml`` prints its path) and use the transforms by name::

    providers:
      - include: /path/to/hybridflow/beam_yaml/providers.yaml
    pipeline:
      transforms:
        - type: ReadFromText
          config: {path: "history/*.jsonl"}
        - type: ParseRecords
          input: ReadFromText
          config:
            schema: hybridflow.pipelines.fraud.records.Transaction
            payload_field: line
            error_handling: {output: dead_letters}
        - type: WindowedAggregate
          input: ParseRecords
          config:
            key: card_id
            window: fixed:60s
            aggregations: {n: count, total: sum(amount), p95: p95(amount)}
        - type: WriteToJson
          input: WindowedAggregate.aggregates
          config: {path: out/aggregates.json}
        - type: WriteToJson
          input: ParseRecords.dead_letters
          config: {path: out/dead_letters.json}

The classes here are the YAML faces of :mod:`hybridflow.transforms`: the
same transforms, with configuration a YAML file can write (a record type is
its dotted name, a lookup handler is a mapping) and Beam YAML's output
conventions:

- transforms that can emit dead letters follow Beam YAML's
  ``error_handling: {output: NAME}``: the main output is ``good``, dead
  letters (:class:`~hybridflow.schemas.DeadLetter` rows) are ``NAME``, and
  ``input: Parse`` means the main output. Leaving dead letters without an
  output is a construction error, never a silent drop.
- ``WindowedAggregate`` has the outputs ``aggregates`` and ``late``.
- ``FilterRecords``, ``SelectFields`` and ``DeriveFields`` are
  :class:`~hybridflow.transforms.Filter`, ``Select`` and ``Derive`` (named
  apart from Beam YAML's own ``Filter``); they need ``error_handling`` only
  when their expressions can fail on a record (integer arithmetic, ``round``).
"""

from __future__ import annotations

import importlib
import pathlib
from typing import Any, Mapping, Optional

import apache_beam as beam

from hybridflow import transforms as core
from hybridflow.errors import SchemaError
from hybridflow.schemas import fields_of

__all__ = [
    "PROVIDERS_FILE",
    "providers",
    "portable_providers",
    "ParseRecords",
    "FilterRecords",
    "SelectFields",
    "DeriveFields",
    "Enrich",
    "WindowedAggregate",
    "Dedupe",
    "ThresholdAlerts",
    "record_type",
    "lookup_handler",
]

#: The providers file to ``include`` in a Beam YAML pipeline.
PROVIDERS_FILE = str(pathlib.Path(__file__).with_name("providers.yaml"))


def providers():
    """The providers of :data:`PROVIDERS_FILE`, for ``YamlTransform(..., providers=...)``."""
    from apache_beam.yaml.yaml_provider import load_providers

    return load_providers(PROVIDERS_FILE)


def portable_providers(version: Optional[str] = None) -> list[dict]:
    """The providers in their portable form: the same transforms, served by
    ``hybridflow==VERSION`` from the package index (Beam YAML's ``python``
    provider with ``packages``) instead of a path into this machine's
    site-packages. Beam runs them in an expansion service with its own venv, so
    the pipeline file works wherever Beam YAML runs it (``python -m
    hybridflow.beam_yaml --portable`` prints it)."""
    import yaml

    from hybridflow import __version__

    (inline,) = yaml.safe_load(pathlib.Path(PROVIDERS_FILE).read_text())
    config = {**inline.get("config", {}), "packages": [f"hybridflow=={version or __version__}"]}
    return [{"type": "python", "config": config, "transforms": dict(inline["transforms"])}]


def record_type(name: Any) -> Any:
    """A record type from its dotted name (``hybridflow.pipelines.fraud.records.Transaction``)."""
    if not isinstance(name, str):
        fields_of(name)
        return name
    module_name, _, attr = name.rpartition(".")
    try:
        value = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise SchemaError(
            f"schema {name!r} cannot be imported ({exc}); give the dotted name of a "
            "typing.NamedTuple class, e.g. hybridflow.pipelines.fraud.records.Transaction"
        ) from None
    fields_of(value)
    return value


def lookup_handler(spec: Mapping[str, Any]) -> core.LookupHandler:
    """A lookup handler from its YAML mapping.

    ``{type: bigtable, project, instance, table, key, schema, column_family,
    cache_ttl}`` or ``{type: memory, key, schema, rows: [...], cache_ttl}``;
    ``schema`` is a dotted name; memory rows are coerced to it.
    """
    from hybridflow.transforms.parse import record_parser

    params = dict(spec)
    kind = params.pop("type", None)
    if "schema" not in params or "key" not in params:
        raise SchemaError(f"lookup {dict(spec)!r}: key and schema are required")
    params["schema"] = record_type(params["schema"])
    try:
        if kind == "memory":
            parse = record_parser(params["schema"])
            params["rows"] = [parse(row) for row in params.get("rows", [])]
            return core.InMemoryLookup(**params)
        if kind == "bigtable":
            return core.BigtableLookup(**params)
    except TypeError as exc:
        raise SchemaError(f"lookup {dict(spec)!r}: {exc}") from None
    raise SchemaError(f"lookup type {kind!r}: use bigtable or memory")


def _error_output(transform: str, error_handling: Optional[Mapping[str, Any]]) -> Optional[str]:
    if error_handling is None:
        return None
    unknown = set(error_handling) - {"output"}
    if unknown or not error_handling.get("output"):
        raise SchemaError(f"{transform}: error_handling takes one key, output: NAME (got {dict(error_handling)!r})")
    return str(error_handling["output"])


def _no_error_output(transform: str) -> SchemaError:
    return SchemaError(
        f"{transform} can emit dead letters: add error_handling: {{output: dead_letters}} "
        "to its config and consume that output (e.g. write it)"
    )


def _with_dead_letters(result, output: Optional[str]):
    if output is not None:
        return {"good": result.records, output: result.dead_letters}
    return result.records


class ParseRecords(beam.PTransform):
    """Parses payloads into typed records; bad ones become dead letters.

    Args:
      schema: dotted name of the record type (a typing.NamedTuple class),
        e.g. hybridflow.pipelines.fraud.records.Transaction.
      payload_field: the input field holding the payload (``line`` after
        ReadFromText); without it each input row is the record's fields.
      format: auto, json, csv, avro or dict.
      timestamp_field: the event-time field, or null to keep input timestamps.
      columns: CSV column order.
      timestamp_unit: unit of epoch numbers in Timestamp fields: s (default), ms or us.
      keep_sensitive: keep the values of the schema's sensitive fields in
        dead letters (masked by default; docs/security.md).
      error_handling: ``{output: NAME}``: the output for dead letters (required).
    """

    def __init__(
        self,
        schema: str,
        payload_field: Optional[str] = None,
        format: str = "auto",
        timestamp_field: Optional[str] = "event_time",
        columns: Optional[list[str]] = None,
        timestamp_unit: str = "s",
        keep_sensitive: bool = False,
        error_handling: Optional[Mapping[str, Any]] = None,
    ):
        super().__init__()
        self._payload_field = payload_field
        self._output = _error_output("ParseRecords", error_handling)
        self._parse = core.ParseRecords(
            record_type(schema), timestamp_field=timestamp_field, format=format, columns=columns,
            timestamp_unit=timestamp_unit, keep_sensitive=keep_sensitive,
        )
        if self._output is None:
            raise _no_error_output("ParseRecords")

    def expand(self, pcoll):
        if self._payload_field is not None:
            field = self._payload_field
            names = [f.name for f in fields_of(pcoll.element_type)]
            if field not in names:
                raise SchemaError(f"ParseRecords: payload_field {field!r} is not an input field ({', '.join(names)})")
            pcoll = pcoll | "Payload" >> beam.Map(lambda row: getattr(row, field))
        result = pcoll | self.label >> self._parse  # dead letters name the YAML step as their stage
        return _with_dead_letters(result, self._output)


class _Expressions(beam.PTransform):
    """The YAML face of an expression transform: dead letters are an output
    when the expressions can fail on a record (the transform says which)."""

    def __init__(self, name: str, transform: beam.PTransform, error_handling: Optional[Mapping[str, Any]]):
        super().__init__()
        self._name = name
        self._transform = transform
        self._output = _error_output(name, error_handling)

    def expand(self, pcoll):
        result = pcoll | self.label >> self._transform
        if self._output is None and self._transform.can_fail:
            raise _no_error_output(self._name)
        return _with_dead_letters(result, self._output)


class FilterRecords(_Expressions):
    """Keeps the records whose ``keep`` expression is true (hybridflow's
    expression language: docs/transforms.md).

    Args:
      keep: a boolean expression, e.g. ``price > 100 and auction % 123 == 0``.
      error_handling: ``{output: NAME}``: the output for dead letters (required
        when the expression can fail on a record).
    """

    def __init__(self, keep: str, error_handling: Optional[Mapping[str, Any]] = None):
        super().__init__("FilterRecords", core.Filter(keep), error_handling)


class SelectFields(_Expressions):
    """Outputs exactly ``fields`` (kept by name) then ``computed`` (name: expression).

    Args:
      fields: input fields to keep.
      computed: output field name -> expression (a field name renames it).
      error_handling: ``{output: NAME}``: the output for dead letters (required
        when an expression can fail on a record).
    """

    def __init__(
        self,
        fields: Optional[list[str]] = None,
        computed: Optional[Mapping[str, str]] = None,
        error_handling: Optional[Mapping[str, Any]] = None,
    ):
        super().__init__("SelectFields", core.Select(*(fields or []), **dict(computed or {})), error_handling)


class DeriveFields(_Expressions):
    """Keeps every input field and adds or replaces ``fields`` (name: expression).

    Args:
      fields: output field name -> expression.
      error_handling: ``{output: NAME}``: the output for dead letters (required
        when an expression can fail on a record).
    """

    def __init__(self, fields: Mapping[str, str], error_handling: Optional[Mapping[str, Any]] = None):
        super().__init__("DeriveFields", core.Derive(**dict(fields)), error_handling)


class Enrich(beam.PTransform):
    """Joins each record with the reference row of its key.

    The reference data is either a second input named ``table``
    (``input: {input: Records, table: Profiles}``) or a ``lookup`` handler.

    Args:
      key: the input field to join on.
      table_key: the table's key field (default: key).
      fields: reference fields to add (default: all but the key).
      prefix: prefix of the added fields.
      on_missing: nulls, dead_letter or fail.
      lookup: a lookup handler, ``{type: bigtable, project, instance, table,
        key, schema, column_family, cache_ttl}`` or ``{type: memory, key,
        schema, rows}``.
      error_handling: ``{output: NAME}``: the output for dead letters
        (required with on_missing dead_letter or a lookup).
    """

    def __init__(
        self,
        key: str,
        table_key: Optional[str] = None,
        fields: Optional[list[str]] = None,
        prefix: str = "",
        on_missing: str = "nulls",
        lookup: Optional[Mapping[str, Any]] = None,
        error_handling: Optional[Mapping[str, Any]] = None,
    ):
        super().__init__()
        self._output = _error_output("Enrich", error_handling)
        self._handler = lookup_handler(lookup) if lookup is not None else None
        self._config = dict(key=key, table_key=table_key, fields=fields, prefix=prefix, on_missing=on_missing)
        self._needs_output = self._handler is not None or on_missing == "dead_letter"
        if self._needs_output and self._output is None:
            raise _no_error_output("Enrich")

    def expand(self, inputs):
        if self._handler is not None:
            if isinstance(inputs, Mapping):
                raise SchemaError("Enrich: with a lookup, give one input (not a table)")
            result = inputs | self.label >> core.Enrich(handler=self._handler, **self._config)
        else:
            if not isinstance(inputs, Mapping) or set(inputs) != {"input", "table"}:
                raise SchemaError(
                    "Enrich: give the records and the reference table as input: {input: ..., table: ...}, "
                    "or a lookup"
                )
            result = inputs["input"] | self.label >> core.Enrich(inputs["table"], **self._config)
        return _with_dead_letters(result, self._output)


class WindowedAggregate(beam.PTransform):
    """Aggregates records per key and event-time window; outputs ``aggregates`` and ``late``.

    Args:
      key: the key field.
      window: ``fixed:60s``, ``sliding:10m/1m``, ``session:5m`` or a mapping
        ``{type: sliding, size: 10m, period: 1m}``.
      aggregations: output field -> ``count``, ``sum(amount)``, ``p95(amount)``,
        ``percentile(amount, 0.99)``, ``approx_distinct(card_id)`` ...
      trigger: ``{early_every: 10s, early_count: 100, late_count: 1,
        accumulation: accumulating}``.
      allowed_lateness: how long after a window's end records still count.
    """

    def __init__(
        self,
        key: str,
        window: Any,
        aggregations: Mapping[str, Any],
        trigger: Optional[Mapping[str, Any]] = None,
        allowed_lateness: Any = 0,
    ):
        super().__init__()
        self._aggregate = core.WindowedAggregate(
            key=key, window=window, aggregations=aggregations, trigger=trigger, allowed_lateness=allowed_lateness
        )

    def expand(self, pcoll):
        result = pcoll | "Aggregate" >> self._aggregate
        return {"aggregates": result.aggregates, "late": result.late}


class Dedupe(beam.PTransform):
    """Drops records whose id was seen less than ``within`` earlier in event time.

    Args:
      id_field: the field that identifies a record, or a list of fields that
        together do (a composite key).
      within: how long an id is remembered (``10m``, ``1h`` or seconds).
    """

    def __init__(self, id_field: Any, within: Any = "1h"):
        super().__init__()
        self._dedupe = core.Dedupe(id_field, within=within)

    def expand(self, pcoll):
        return pcoll | "Dedupe" >> self._dedupe


class ThresholdAlerts(beam.PTransform):
    """Evaluates rules on each row and emits alerts.

    Args:
      rules: ``[{name: velocity, field: n, op: ">=", threshold: 8}, {type:
        zscore, ...}, {type: not_in, ...}]``.
      key: the field that identifies the entity.
      time_field: event time of the alert (default: window_end or event_time).
      cooldown: at most one alert per rule, key and period (``10m``).
    """

    def __init__(
        self,
        rules: list[Mapping[str, Any]],
        key: str,
        time_field: Optional[str] = None,
        cooldown: Any = 0,
    ):
        super().__init__()
        self._alerts = core.ThresholdAlerts(rules, key=key, time_field=time_field, cooldown=cooldown)

    def expand(self, pcoll):
        return pcoll | "Alerts" >> self._alerts

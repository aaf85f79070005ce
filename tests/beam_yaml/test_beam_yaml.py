"""hybridflow's transforms in a Beam YAML pipeline, run by Beam's own YAML runner."""

import json
import textwrap

import pytest
import yaml
from apache_beam.yaml import main as yaml_main
from apache_beam.yaml.yaml_provider import InlineProvider

from hybridflow import SchemaError
from hybridflow import beam_yaml


def txn(txn_id, card, amount, second):
    return json.dumps({
        "txn_id": txn_id, "card_id": card, "customer_id": "u1", "merchant_id": "m1", "category": "food",
        "amount": amount, "currency": "USD", "country": "US", "event_time": f"2026-01-01T00:00:{second:02d}Z",
    })


LINES = [
    txn("t1", "c1", 20.0, 5),
    txn("t2", "c1", 900.0, 10),
    txn("t2", "c1", 900.0, 10),  # a duplicate delivery
    txn("t3", "c2", 15.0, 20),
    txn("t4", "c3", 1.0, 30),  # no profile: a dead letter from Enrich
    '{"txn_id": "t5", "amount": "lots"}',  # a dead letter from ParseRecords
]

PIPELINE = """
providers:
  - include: {providers}
pipeline:
  transforms:
    - type: Create
      config:
        elements: {elements}
    - type: ParseRecords
      input: Create
      config:
        schema: hybridflow.pipelines.fraud.records.Transaction
        payload_field: line
        error_handling: {{output: dead_letters}}
    - type: Dedupe
      input: ParseRecords
      config: {{id_field: txn_id, within: 1h}}
    - type: Enrich
      input: Dedupe
      config:
        key: card_id
        prefix: profile_
        on_missing: dead_letter
        lookup:
          type: memory
          key: card_id
          schema: hybridflow.pipelines.fraud.records.CardProfile
          cache_ttl: 5m
          rows:
            - {{card_id: c1, txn_count: 40, amount_mean: 25.0, amount_stddev: 5.0, usual_countries: [US],
               last_seen: "2025-12-31T00:00:00Z"}}
            - {{card_id: c2, txn_count: 3, amount_mean: 15.0, amount_stddev: 1.0, usual_countries: [US],
               last_seen: "2025-12-31T00:00:00Z"}}
        error_handling: {{output: dead_letters}}
    - type: WindowedAggregate
      input: Enrich
      config:
        key: card_id
        window: fixed:60s
        aggregations: {{n: count, total: sum(amount), p50: p50(amount), merchants: approx_distinct(merchant_id),
                        usual_mean: max(profile_amount_mean)}}
    - type: ThresholdAlerts
      input: WindowedAggregate.aggregates
      config:
        key: card_id
        rules:
          - {{name: spend, field: total, op: ">=", threshold: 500}}
    - type: MapToFields
      input: ThresholdAlerts
      config:
        language: python
        fields: {{rule: rule, key: key, value: value}}
    - type: AssertEqual
      input: MapToFields
      config:
        elements: [{{rule: spend, key: c1, value: 920.0}}]
    - type: MapToFields
      name: Windows
      input: WindowedAggregate.aggregates
      config:
        language: python
        fields: {{card_id: card_id, n: n, total: total, merchants: merchants}}
    - type: AssertEqual
      name: CheckWindows
      input: Windows
      config:
        elements: [{{card_id: c1, n: 2, total: 920.0, merchants: 1}}, {{card_id: c2, n: 1, total: 15.0, merchants: 1}}]
    - type: Flatten
      input: [ParseRecords.dead_letters, Enrich.dead_letters]
    - type: MapToFields
      name: Reasons
      input: Flatten
      config:
        language: python
        fields: {{stage: stage, error_type: error_type}}
    - type: AssertEqual
      name: CheckDeadLetters
      input: Reasons
      config:
        elements: [{{stage: ParseRecords, error_type: missing_field}}, {{stage: Enrich, error_type: missing_key}}]
"""


def test_yaml_pipeline_runs_end_to_end(tmp_path):
    """ParseRecords -> Dedupe -> Enrich (lookup) -> WindowedAggregate -> ThresholdAlerts,
    written in Beam YAML and run by `apache_beam.yaml.main` on the FnApiRunner."""
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(PIPELINE.format(providers=beam_yaml.PROVIDERS_FILE,
                                    elements=json.dumps([{"line": line} for line in LINES])))
    yaml.safe_load(spec.read_text())  # the spec itself is valid YAML
    yaml_main.run(argv=[f"--yaml_pipeline_file={spec}", "--runner=FnApiRunner"])


def test_yaml_pipeline_assertions_can_fail(tmp_path):
    """The same pipeline with a wrong expectation fails: the test above is not vacuous."""
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(PIPELINE.format(providers=beam_yaml.PROVIDERS_FILE,
                                    elements=json.dumps([{"line": line} for line in LINES]))
                    .replace("value: 920.0", "value: 921.0"))
    with pytest.raises(Exception, match="921"):
        yaml_main.run(argv=[f"--yaml_pipeline_file={spec}", "--runner=FnApiRunner"])


def test_providers_file_lists_every_transform_with_a_yaml_ready_signature():
    (provider,) = beam_yaml.providers()
    names = set(provider.provided_transforms())
    assert names == {"ParseRecords", "FilterRecords", "SelectFields", "DeriveFields", "Enrich", "WindowedAggregate",
                     "Dedupe", "ThresholdAlerts"}
    for name in names:
        schema = InlineProvider.config_schema_from_callable(getattr(beam_yaml, name))
        assert schema.fields, name
        assert all(f.description for f in schema.fields), f"{name}: every parameter has Args: docs"


EXPRESSIONS = """
providers:
  - include: {providers}
pipeline:
  transforms:
    - type: Create
      config:
        elements:
          - {{auction: 123, price: 150.0, channel: web}}
          - {{auction: 246, price: 99.0, channel: App}}
          - {{auction: 369, price: 300.0, channel: App}}
          - {{auction: 9223372036854775800, price: 500.0, channel: web}}
    - type: FilterRecords
      input: Create
      config:
        keep: "price > 100 and auction % 123 == 0"
    - type: DeriveFields
      input: FilterRecords
      config:
        fields: {{channel: "lower(channel)", next: "auction * 2"}}
        error_handling: {{output: dead_letters}}
    - type: SelectFields
      input: DeriveFields
      config:
        fields: [auction, channel]
        computed: {{euro: "round(price * 0.89, 2)"}}
        error_handling: {{output: dead_letters}}
    - type: AssertEqual
      input: SelectFields
      config:
        elements: [{{auction: 123, channel: web, euro: 133.5}}, {{auction: 369, channel: app, euro: {euro}}}]
    - type: Flatten
      input: [DeriveFields.dead_letters, SelectFields.dead_letters]
    - type: MapToFields
      input: Flatten
      config:
        language: python
        fields: {{error_type: error_type}}
    - type: AssertEqual
      name: CheckDeadLetters
      input: MapToFields
      config:
        elements: [{{error_type: expression_error}}]
"""


@pytest.mark.parametrize("euro, passes", [(267.0, True), (267.5, False)])
def test_yaml_filter_derive_select(tmp_path, euro, passes):
    """FilterRecords -> DeriveFields (an overflowing row becomes a dead letter) -> SelectFields,
    run by Beam YAML; a wrong expectation fails, so the check is not vacuous."""
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(EXPRESSIONS.format(providers=beam_yaml.PROVIDERS_FILE, euro=euro))
    run = lambda: yaml_main.run(argv=[f"--yaml_pipeline_file={spec}", "--runner=FnApiRunner"])  # noqa: E731
    if passes:
        run()
    else:
        with pytest.raises(Exception, match="267.5"):
            run()


def test_expression_dead_letters_need_an_output_only_when_they_can_happen():
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    p = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    rows = p | beam.Create([beam.Row(auction=1, price=2.0)])
    _ = rows | "Safe" >> beam_yaml.FilterRecords(keep="price > 1.5")  # cannot fail: no output needed
    with pytest.raises(SchemaError, match="DeriveFields can emit dead letters: add error_handling"):
        _ = rows | beam_yaml.DeriveFields(fields={"next": "auction + 1"})


def test_dead_letters_need_an_output():
    with pytest.raises(SchemaError, match="error_handling"):
        beam_yaml.ParseRecords(schema="hybridflow.pipelines.fraud.records.Transaction")
    with pytest.raises(SchemaError, match="error_handling"):
        beam_yaml.Enrich(key="card_id", on_missing="dead_letter")
    with pytest.raises(SchemaError, match="cannot be imported"):
        beam_yaml.ParseRecords(schema="hybridflow.schemas.Nope", error_handling={"output": "dead"})
    with pytest.raises(SchemaError, match="lookup type"):
        beam_yaml.lookup_handler({"type": "redis", "key": "card_id", "schema": "hybridflow.pipelines.fraud.records.CardProfile"})


@pytest.mark.parametrize("name", ["Transaction", "CardProfile"])
def test_schemas_by_the_fraud_package_name_and_by_the_name_before_it(name):
    from hybridflow.pipelines.fraud import records

    cls = getattr(records, name)
    assert beam_yaml.record_type(f"hybridflow.pipelines.fraud.records.{name}") is cls
    assert beam_yaml.record_type(f"hybridflow.schemas.{name}") is cls  # YAML files written before the move
    # the old name from a fresh interpreter: no import cycle between schemas and records
    import subprocess
    import sys

    code = f"from hybridflow.schemas import {name}; print({name}.__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "hybridflow.pipelines.fraud.records"


def test_python_m_prints_the_providers_path():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "hybridflow.beam_yaml"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == beam_yaml.PROVIDERS_FILE
    assert textwrap.dedent(open(beam_yaml.PROVIDERS_FILE).read()).count("hybridflow.beam_yaml.") == 8


def _portable_block():
    from tests._docs import example

    return example("transforms.md", "yaml-portable", "yaml")


def test_the_portable_providers_are_the_shipped_transforms_served_by_the_package():
    """docs/transforms.md's portable form is what `python -m hybridflow.beam_yaml --portable` prints for this
    version, and Beam YAML reads it as a python provider that installs hybridflow==VERSION."""
    import subprocess
    import sys

    import yaml
    from apache_beam.yaml import yaml_provider

    import hybridflow

    block = yaml.safe_load(_portable_block())
    printed = subprocess.run([sys.executable, "-m", "hybridflow.beam_yaml", "--portable"],
                             capture_output=True, text=True, timeout=120, check=True).stdout
    assert yaml.safe_load(printed) == block == {"providers": beam_yaml.portable_providers()}
    (spec,) = block["providers"]
    assert spec["config"]["packages"] == [f"hybridflow=={hybridflow.__version__}"]
    (inline,) = beam_yaml.providers()
    assert set(spec["transforms"]) == set(inline.provided_transforms())
    (provider,) = yaml_provider.parse_providers("pipeline.yaml", block["providers"])
    assert isinstance(provider, yaml_provider.ExternalPythonProvider)
    assert set(provider.provided_transforms()) == set(spec["transforms"])
    assert provider._service._packages == [f"hybridflow=={hybridflow.__version__}"]  # what Beam will pip install


def test_a_day_is_24_hours_in_hybridflow_and_12_in_beam_yamls_window_into():
    """docs/transforms.md's note on durations stays true (if Beam fixes its 'd', the note must go)."""
    from apache_beam.yaml.yaml_provider import YamlProviders

    from hybridflow.durations import parse_duration

    assert parse_duration("1d") == 86400
    assert YamlProviders.WindowInto._parse_duration("1d", "size") == 12 * 3600

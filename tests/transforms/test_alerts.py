from typing import NamedTuple, Optional

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.utils.timestamp import Timestamp

from hybridflow import NotInRule, Rule, SchemaError, ThresholdAlerts, ZScoreRule
from hybridflow.testing import START, CreateEvents, EventStream, Watermark, batch_pipeline, streaming_pipeline, transactions
from hybridflow.schemas import register
from hybridflow.transforms.alerts import alert_id, rule_from_dict


class Obs:
    def __init__(self, **kw):
        self.__dict__.update(kw)


class TestRules:
    def test_threshold(self):
        rule = Rule("velocity", "n", ">=", 3)
        assert rule.evaluate(Obs(n=3)) == (3.0, "n=3 >= 3")
        assert rule.evaluate(Obs(n=2)) is None
        assert rule.evaluate(Obs(n=None)) is None
        with pytest.raises(SchemaError, match="op"):
            Rule("x", "n", "=>", 1)

    def test_zscore_needs_history_and_floors_stddev(self):
        rule = ZScoreRule("z", "amount", "mean", "sd", 4.0, count_field="count", min_count=5)
        assert rule.evaluate(Obs(amount=100.0, mean=20.0, sd=10.0, count=9))[0] == 8.0
        assert rule.evaluate(Obs(amount=100.0, mean=20.0, sd=10.0, count=4)) is None
        assert rule.evaluate(Obs(amount=100.0, mean=None, sd=None, count=None)) is None
        # stddev 0 is floored at min_stddev=1
        assert rule.evaluate(Obs(amount=25.0, mean=20.0, sd=0.0, count=9))[0] == 5.0

    def test_not_in(self):
        rule = NotInRule("new_country", "country", "usual")
        assert rule.evaluate(Obs(country="FR", usual=["US"]))[0] == 1.0
        assert rule.evaluate(Obs(country="US", usual=["US"])) is None
        assert rule.evaluate(Obs(country="US", usual=None)) is None

    def test_from_dict(self):
        assert rule_from_dict({"name": "v", "field": "n", "op": ">", "threshold": 1}) == Rule("v", "n", ">", 1)
        assert isinstance(rule_from_dict({"type": "zscore", "name": "z", "value_field": "a", "mean_field": "m",
                                          "stddev_field": "s", "threshold": 3}), ZScoreRule)
        with pytest.raises(SchemaError, match="unknown keys"):
            rule_from_dict({"name": "v", "field": "n", "op": ">", "threshold": 1, "colour": "red"})

    def test_alert_id_is_deterministic(self):
        assert alert_id("r", "k", START) == alert_id("r", "k", START)
        assert alert_id("r", "k", START) != alert_id("r", "k", START + 1)


BIG = {"name": "big", "field": "amount", "op": ">=", "threshold": 100}


def test_batch_alerts_with_cooldown_keep_the_earliest():
    txns = transactions([("c1", 150, 30), ("c1", 120, 10), ("c1", 200, 700), ("c2", 50, 5), ("c2", 500, 20)])
    with batch_pipeline() as p:
        alerts = p | CreateEvents(txns) | ThresholdAlerts([BIG], key="card_id", cooldown="10m")
        assert_that(
            alerts | beam.Map(lambda a: (a.rule, a.key, a.value, a.event_time - START)),
            equal_to([("big", "c1", 120.0, 10), ("big", "c1", 200.0, 700), ("big", "c2", 500.0, 20)]),
        )


@pytest.mark.streaming
def test_streaming_cooldown_suppresses_repeats_per_period():
    txns = transactions([("c1", 120, 10), ("c1", 150, 30), ("c1", 200, 700), ("c2", 500, 20)])
    items = txns[:2] + [Watermark(START + 100)] + txns[2:]
    with streaming_pipeline() as p:
        alerts = p | EventStream(items) | ThresholdAlerts([BIG], key="card_id", cooldown="10m")
        assert_that(
            alerts | beam.Map(lambda a: (a.key, a.value)),
            equal_to([("c1", 120.0), ("c1", 200.0), ("c2", 500.0)]),
        )


def test_missing_fields_fail_at_construction():
    p = batch_pipeline()
    txns = p | CreateEvents(transactions([("c1", 1, 1)]))
    with pytest.raises(SchemaError, match="nosuch"):
        _ = txns | ThresholdAlerts([{"name": "x", "field": "nosuch", "op": ">", "threshold": 1}], key="card_id")
    with pytest.raises(SchemaError, match="unique"):
        ThresholdAlerts([BIG, BIG], key="card_id")


@pytest.mark.streaming
def test_parity_batch_equals_streaming(tmp_path):
    """Alerts over windowed aggregates with a cooldown: bounded and TestStream agree
    when the stream delivers the windows in order."""
    from hybridflow import WindowedAggregate
    from hybridflow.testing import Collect, collected

    txns = transactions([(f"c{i % 3}", 40.0 * (i % 7), 13 * i) for i in range(60)])
    rules = [{"name": "spend", "field": "total", "op": ">=", "threshold": 150},
             {"name": "busy", "field": "n", "op": ">=", "threshold": 2}]

    def alerts(events):
        windows = events | WindowedAggregate(key="card_id", window="fixed:60s",
                                             aggregations={"n": "count", "total": "sum(amount)"})
        return windows.aggregates | ThresholdAlerts(rules, key="card_id", cooldown="3m")

    items = []
    for i, t in enumerate(txns):
        items.append(t)
        if i % 10 == 9:
            items.append(Watermark(t.event_time))
    with batch_pipeline() as p:
        alerts(p | CreateEvents(txns)) | Collect(tmp_path / "batch")
    with streaming_pipeline() as p:
        alerts(p | EventStream(items)) | Collect(tmp_path / "stream")
    batch, stream = sorted(collected(tmp_path / "batch")), sorted(collected(tmp_path / "stream"))
    assert batch and batch == stream
    assert len({a.rule for a in batch}) == 2


@pytest.mark.parametrize("threshold", [float("nan"), float("inf"), float("-inf"), "8", None])
def test_rule_thresholds_must_be_finite_numbers(threshold):
    with pytest.raises(SchemaError, match="threshold .* must be a finite number"):
        Rule("r", field="n", op=">=", threshold=threshold)
    with pytest.raises(SchemaError, match="threshold .* must be a finite number"):
        ZScoreRule("z", value_field="a", mean_field="m", stddev_field="s", threshold=threshold)


# -- per-key thresholds: a rule compares a field with another field of the record


@register
class Reading(NamedTuple):
    machine: str
    temperature: float
    max_temp: Optional[float]
    model: str
    event_time: Timestamp


# machine m1's limit is 80, m2's is 60, m3 has no known limit (null: never fires)
READINGS = [
    Reading(machine, temp, limit, "pump", START + seconds)
    for machine, temp, limit, seconds in [
        ("m1", 75.0, 80.0, 10), ("m1", 81.5, 80.0, 20), ("m2", 61.0, 60.0, 30), ("m2", 59.0, 60.0, 40),
        ("m3", 99.0, None, 50), ("m1", 80.0, 80.0, 700), ("m2", 60.0, 60.0, 800),
    ]
]
OVER_LIMIT = {"name": "over_limit", "field": "temperature", "op": ">", "threshold_field": "max_temp"}


def test_threshold_field_compares_with_another_field_of_the_record():
    rule = rule_from_dict(OVER_LIMIT)
    assert rule == Rule("over_limit", "temperature", ">", threshold_field="max_temp")
    assert rule.evaluate(READINGS[1]) == (81.5, "temperature=81.5 > max_temp=80")
    assert rule.evaluate(READINGS[0]) is None and rule.evaluate(READINGS[4]) is None  # below; no limit
    assert Rule("at_limit", "temperature", ">=", threshold_field="max_temp").evaluate(READINGS[5])[0] == 80.0


def test_threshold_field_mistakes_are_schema_errors_at_construction():
    with pytest.raises(SchemaError, match=r"threshold 'max_temp' must be a finite number; .* threshold_field='max_temp'"):
        rule_from_dict({"name": "r", "field": "temperature", "op": ">", "threshold": "max_temp"})
    with pytest.raises(SchemaError, match="threshold=90 and threshold_field='max_temp' both given"):
        Rule("r", "temperature", ">", threshold=90, threshold_field="max_temp")
    p = batch_pipeline()
    readings = p | CreateEvents(READINGS)
    with pytest.raises(SchemaError, match=r"fields \['max_tmp'\] are not in the input"):
        _ = readings | "Unknown" >> ThresholdAlerts([{**OVER_LIMIT, "threshold_field": "max_tmp"}], key="machine")
    with pytest.raises(SchemaError, match="rule 'over_limit' compares field 'model', which is str, not a number"):
        _ = readings | "Text" >> ThresholdAlerts([{**OVER_LIMIT, "threshold_field": "model"}], key="machine")
    with pytest.raises(SchemaError, match="compares field 'model', which is str"):
        _ = readings | "TextValue" >> ThresholdAlerts([{**OVER_LIMIT, "field": "model"}], key="machine")


@pytest.mark.streaming
def test_threshold_field_alerts_agree_per_record_columnar_and_streaming(tmp_path):
    """The same readings bounded (records and Arrow tables) and on a TestStream give the same alerts."""
    from hybridflow.columnar import ToTables
    from hybridflow.testing import Collect, collected

    def alerts(readings, label="Alerts"):
        return readings | label >> ThresholdAlerts([OVER_LIMIT], key="machine", cooldown="10m")

    with batch_pipeline() as p:
        readings = p | CreateEvents(READINGS)
        alerts(readings) | "Records" >> Collect(tmp_path / "records")
        tables = readings | ToTables("event_time", batch_size=3)
        alerts(tables, "TableAlerts") | "Tables" >> Collect(tmp_path / "tables")
    with streaming_pipeline() as p:
        alerts(p | EventStream(READINGS[:4] + [Watermark(START + 100)] + READINGS[4:])) | Collect(tmp_path / "stream")
    expected = [("m1", 81.5, 80.0, "over_limit machine=m1: temperature=81.5 > max_temp=80"),
                ("m2", 61.0, 60.0, "over_limit machine=m2: temperature=61 > max_temp=60")]
    for name in ("records", "tables", "stream"):
        got = sorted((a.key, a.value, a.threshold, a.message) for a in collected(tmp_path / name))
        assert got == expected, name


def test_docs_per_key_threshold_example_runs_and_prints_what_the_page_says(tmp_path, capsys):
    from tests._docs import example, printed

    namespace = {"__name__": "docs_example"}
    exec(compile(example("transforms.md", "per-key-threshold", "python"), "docs/transforms.md", "exec"), namespace)
    namespace["run"](str(tmp_path))
    assert capsys.readouterr().out == printed("transforms.md", "per-key-threshold")

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from hybridflow import NotInRule, Rule, SchemaError, ThresholdAlerts, ZScoreRule
from hybridflow.testing import START, CreateEvents, EventStream, Watermark, batch_pipeline, streaming_pipeline, transactions
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

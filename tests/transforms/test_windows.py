"""Window specs: every accepted form, and one SchemaError naming the value and the forms for the rest."""

import pytest

from hybridflow import SchemaError, WindowedAggregate
from hybridflow.errors import InvalidOptionError
from hybridflow.pipelines.building import check_window
from hybridflow.transforms.windows import WINDOW_FORMS, FixedWindow, SessionWindow, SlidingWindow, window_spec

ACCEPTED = [
    ("fixed:60s", FixedWindow(60)),
    ("fixed:1m/10s", FixedWindow(60, 10)),
    (" Fixed : 90 ", FixedWindow(90)),
    ("sliding:10m/1m", SlidingWindow(600, 60)),
    ("sliding:10m/1m/30s", SlidingWindow(600, 60, 30)),
    ("session:5m", SessionWindow(300)),
    ("sessions:5m", SessionWindow(300)),
    ({"type": "sliding", "size": "10m", "period": "1m"}, SlidingWindow(600, 60)),
    ({"type": "fixed", "size": 60}, FixedWindow(60)),
    ({"type": "session", "gap": "30s"}, SessionWindow(30)),
    (SlidingWindow(600, 60), SlidingWindow(600, 60)),
]

REJECTED = [
    "sliding:5m every 1m",  # the trial's: once a TypeError about a missing period
    "sliding:5m",
    "sliding:10m/",
    "sliding:1m/10m",  # period longer than size
    "fixed:",
    "fixed",
    "fixed:abc",
    "fixed:-5s",
    "fixed:0",
    "fixed:1m/2s/3s",
    "tumbling:abc",
    "session:",
    "session:5m/1m",
    ":60s",
    "",
    "60s",
    {"type": "sliding", "size": "10m"},
    {"type": "fixed"},
    {"type": "hopping", "size": "10m"},
    {"size": "10m"},
    {"type": "fixed", "size": "10m", "every": "1m"},
    {"type": "fixed", "size": "often"},
    60,
    None,
    ["fixed", "60s"],
]


@pytest.mark.parametrize("value, spec", ACCEPTED, ids=[repr(v) for v, _ in ACCEPTED])
def test_accepted_forms(value, spec):
    assert window_spec(value) == spec


@pytest.mark.parametrize("value", REJECTED, ids=[repr(v) for v in REJECTED])
def test_each_rejected_shape_is_one_schema_error_naming_the_value_and_the_forms(value):
    with pytest.raises(SchemaError) as raised:
        window_spec(value)
    message = str(raised.value)
    assert message.startswith(f"window {value!r}: ")
    assert message.endswith(f"; accepted: {WINDOW_FORMS}")
    assert "\n" not in message


@pytest.mark.parametrize("value", ["sliding:5m every 1m", "tumbling:abc", {"type": "sliding", "size": "10m"}])
def test_every_place_that_takes_a_window_spec_says_the_same(value):
    with pytest.raises(SchemaError, match="accepted: fixed:SIZE"):
        WindowedAggregate(key="card_id", window=value, aggregations={"n": "count"})
    from hybridflow.beam_yaml import WindowedAggregate as YamlWindowedAggregate

    with pytest.raises(SchemaError, match="accepted: fixed:SIZE"):
        YamlWindowedAggregate(key="card_id", window=value, aggregations={"n": "count"})


def test_the_cli_flag_names_itself():
    with pytest.raises(InvalidOptionError, match=r"^--window=sliding:5m every 1m: window 'sliding:5m every 1m': "
                                                   r"sliding needs period; accepted: fixed:SIZE"):
        check_window("sliding:5m every 1m")


def test_docs_example_prints_what_the_page_says(capsys):
    from tests._docs import example, printed

    exec(compile(example("transforms.md", "window-spec-error", "python"), "docs/transforms.md", "exec"), {})
    assert capsys.readouterr().out == printed("transforms.md", "window-spec-error")

"""``hybridflow new NAME``: a pipeline package that passes its own tests out of the box.

The package has what every pipeline has (the fraud pipeline's layout):

- ``NAME/records.py``: the record types (``Event``), with constraints;
- ``NAME/generator.py``: ``synthetic://NAME-events``, a deterministic generator, bounded or unbounded;
- ``NAME/pipeline.py``: the parameters, the batch layer (a baseline per entity
  from history, :class:`~hybridflow.transforms.Summarize`), the scoring of both
  modes (enrichment, a z-score rule, sliding windows, a count rule), ``build``,
  ``sinks`` and ``SPEC``;
- ``tests/``: the generator is deterministic, batch and streaming scoring agree
  on the same records, the whole pipeline runs;
- ``pyproject.toml`` declaring ``SPEC`` as the entry point ``NAME`` of the group
  ``hybridflow.pipelines``, so an installed package is a ``hybridflow`` command's pipeline.
"""

from __future__ import annotations

import keyword
import pathlib
from typing import Optional

from hybridflow.errors import UsageError

__all__ = ["write_scaffold", "scaffold_files"]

_PYPROJECT = '''\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "__NAME__"
version = "0.0.1"
description = "The __NAME__ pipeline for hybridflow"
requires-python = ">=3.11"
dependencies = ["hybridflow"]

[project.optional-dependencies]
test = ["pytest>=8"]

# `hybridflow list/describe/run/generate/report/template` find the pipeline here once installed.
[project.entry-points."hybridflow.pipelines"]
__NAME__ = "__NAME__:SPEC"

[tool.setuptools.packages.find]
include = ["__NAME__", "__NAME__.*"]

[tool.pytest.ini_options]
testpaths = ["tests"]
pythonpath = ["."]
'''

_README = '''\
# __NAME__

A [hybridflow](https://github.com/hybridflow/hybridflow) pipeline: a baseline per entity from
history (batch layer), then every event scored against its entity's baseline and sliding windows
per entity (the same transforms on a bounded and an unbounded input).

```sh
pip install -e .            # registers the entry point: hybridflow now knows __NAME__
pytest                      # generator, batch/stream parity, a whole run
hybridflow describe __NAME__
hybridflow run __NAME__                                  # batch, synthetic input
hybridflow run __NAME__ --mode streaming --profile prism --duration 60s
hybridflow generate __NAME__ --out data/__NAME__         # the default inputs as files
hybridflow run __NAME__ --input 'data/__NAME__/__NAME__-events-*.jsonl' --history 'data/__NAME__/history-*.jsonl'
hybridflow report __NAME__ --input output/__NAME__ --out report.html
hybridflow template build __NAME__                       # Dataflow flex template
```

Change `records.py` (your record types), `generator.py` (realistic synthetic data) and
`pipeline.py` (the batch layer and the scoring); keep the parity test green.
'''

_INIT = '''\
"""__NAME__: a hybridflow pipeline (records, generator, build, SPEC)."""

from __NAME__.generator import SyntheticEvents
from __NAME__.pipeline import SPEC, BuildBaselines, ScoreEvents, __CLASS__Options
from __NAME__.records import Event

__all__ = ["SPEC", "__CLASS__Options", "BuildBaselines", "ScoreEvents", "SyntheticEvents", "Event"]
'''

_RECORDS = '''\
"""Record types of __NAME__: typing.NamedTuple classes with Beam schemas."""

# No `from __future__ import annotations` here: Beam reads the annotations as types.

from typing import NamedTuple

from apache_beam.utils.timestamp import Timestamp

from hybridflow.schemas import Pattern, Range, register


@register
class Event(NamedTuple):
    """One measurement of one entity, at its event time."""

    event_id: str
    entity_id: str
    value: float
    event_time: Timestamp

    # checked by ParseRecords: a record that breaks one is a dead letter with the reason
    constraints = {"entity_id": Pattern(r"\\S{1,64}"), "value": Range(min=0.0)}
'''

_GENERATOR = '''\
"""synthetic://__NAME__-events: a deterministic stream of events (bounded or unbounded).

Every record is a function of (seed, index) only; each entity has its own level
(the same for every seed, so a history and a live stream describe the same
entities) and a share of records (``spike``) are three times that level.
"""

from __future__ import annotations

import dataclasses

from hybridflow.io.synthetic import SyntheticStream, draw, event_text, index_hash, share_field, unit


@dataclasses.dataclass(frozen=True)
class SyntheticEvents(SyntheticStream):
    """Parameters of synthetic://__NAME__-events (and those of every stream: seed,
    count, rate, duration, start, malformed, disorder, late ...)."""

    stream = "__NAME__-events"

    entities: int = 50
    spike: float = share_field(0.01)

    def check(self) -> list[str]:
        return [f"entities={self.entities} must be >= 1"] if self.entities < 1 else []

    def record(self, index: int, event_seconds: float, cache: dict) -> str:
        h = index_hash(self.seed, index)  # hashed once: each draw(h, salt) is unit(seed, index, salt)
        k = int(draw(h, 11) * self.entities)
        level = 10.0 + 90.0 * unit(0, k, 101)  # per entity, not per seed
        value = level * (0.9 + 0.2 * draw(h, 12))
        if draw(h, 13) < self.spike:
            value *= 3.0
        record = {
            "event_id": f"e{self.seed}-{index:010d}",
            "entity_id": f"entity-{k:04d}",
            "value": round(value, 3),
            "event_time": event_text(self.displaced(index, event_seconds, hashed=h)),
        }
        bad = [("value", -1.0), ("value", "n/a")]
        return self.malformed_text(index, record, missing="entity_id", bad=bad, hashed=h)
'''

_PIPELINE = '''\
"""__NAME__: baselines per entity from history (batch layer), scoring of every event (both modes).

Batch layer: from a bounded history, the count, mean and standard deviation of
``value`` per entity. Scoring, the same transforms on a bounded (batch) and an
unbounded (streaming) input: each event enriched with its entity's baseline ->
a z-score rule -> sliding windows per entity -> a count rule -> alerts.
"""

from __future__ import annotations

from typing import Any, Optional

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from hybridflow.errors import InvalidOptionError
from hybridflow.options import HybridflowOptions
from hybridflow.pipelines import PipelineParameters, PipelineSpec
from hybridflow.pipelines.building import check_inputs, check_window, file_sinks, read_records, stream_uri
from hybridflow.transforms import (
    Enrich,
    MissingKeyPolicy,
    Rule,
    Summarize,
    ThresholdAlerts,
    WindowedAggregate,
    ZScoreRule,
)

from __NAME__.generator import SyntheticEvents
from __NAME__.records import Event

DEFAULTS = {
    "batch": {"input": "synthetic://__NAME__-events?count=5000&seed=2", "output": "output/__NAME__",
              "output_format": "jsonl", "window": "sliding:5m/1m", "allowed_lateness": 300.0, "cooldown": 600.0},
    "streaming": {"input": "synthetic://__NAME__-events?rate=20&seed=3&spike=0.02", "output": "output/__NAME__-streaming",
                  "output_format": "jsonl", "window": "sliding:5m/1m", "allowed_lateness": 300.0, "cooldown": 600.0,
                  "print_alerts": True},
}


class __CLASS__Options(PipelineParameters):
    """Parameters of __NAME__ (each becomes a flag and a flex template parameter)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--history", default="synthetic://__NAME__-events?count=5000&seed=1",
                            help="Bounded history the baselines are computed from.")
        parser.add_argument("--zscore_threshold", type=float, default=4.0,
                            help="Alert when a value is this many standard deviations above its entity's mean.")
        parser.add_argument("--min_history", type=int, default=5,
                            help="The z-score rule applies to entities with at least this many past events.")
        parser.add_argument("--count_threshold", type=int, default=40,
                            help="Alert when an entity has at least this many events in one window.")


def validate(options: PipelineOptions) -> None:
    hf, own = options.view_as(HybridflowOptions), options.view_as(__CLASS__Options)
    if not own.zscore_threshold > 0:
        raise InvalidOptionError(f"--zscore_threshold={own.zscore_threshold}: must be > 0")
    if own.count_threshold < 1:
        raise InvalidOptionError(f"--count_threshold={own.count_threshold}: must be >= 1")
    check_window(hf.window)
    check_inputs({"input": hf.input, "history": own.history})


class BuildBaselines(beam.PTransform):
    """Events -> one baseline row per entity (entity_id, n, mean, stddev)."""

    def expand(self, events):
        return events | "Summarize" >> Summarize(
            key="entity_id", aggregations={"n": "count", "mean": "mean(value)", "stddev": "stddev(value)"}
        )


class ScoreEvents(beam.PTransform):
    """Scoring, the same in batch and streaming: {alerts, aggregates, late, dead_letters}."""

    def __init__(self, baselines, window: str = "sliding:5m/1m", zscore_threshold: float = 4.0,
                 min_history: int = 5, count_threshold: int = 40, cooldown: float = 600.0,
                 allowed_lateness: float = 300.0, early_count: Optional[int] = None):
        super().__init__()
        self._baselines = baselines
        self._window, self._z, self._min = window, zscore_threshold, min_history
        self._count, self._cooldown, self._lateness = count_threshold, cooldown, allowed_lateness
        self._trigger = {"early_count": early_count}

    def expand(self, events):
        enriched = events | "EnrichWithBaseline" >> Enrich(
            self._baselines, key="entity_id", fields=["n", "mean", "stddev"], prefix="baseline_",
            on_missing=MissingKeyPolicy.NULLS,
        )
        spikes = enriched.records | "SpikeRule" >> ThresholdAlerts(
            [ZScoreRule("spike", value_field="value", mean_field="baseline_mean", stddev_field="baseline_stddev",
                        threshold=self._z, count_field="baseline_n", min_count=self._min)],
            key="entity_id", cooldown=self._cooldown,
        )
        windows = enriched.records | "EntityWindows" >> WindowedAggregate(
            key="entity_id", window=self._window,
            aggregations={"events": "count", "mean_value": "mean(value)", "max_value": "max(value)"},
            allowed_lateness=self._lateness, trigger=self._trigger,
        )
        busy = windows.aggregates | "CountRule" >> ThresholdAlerts(
            [Rule("busy", field="events", op=">=", threshold=self._count)], key="entity_id", cooldown=self._cooldown,
        )
        return {
            "alerts": (spikes, busy) | "AllAlerts" >> beam.Flatten(),
            "aggregates": windows.aggregates,
            "late": windows.late,
            "dead_letters": enriched.dead_letters,
        }


def build(p: beam.Pipeline, options: PipelineOptions) -> dict[str, Any]:
    hf, own = options.view_as(HybridflowOptions), options.view_as(__CLASS__Options)
    batch = hf.mode == "batch"
    events = read_records(p, "Events", hf.input if batch else stream_uri(hf.input, hf.duration), Event, options,
                          bounded=batch)
    history = read_records(p, "History", own.history, Event, options, bounded=True)
    baselines = history.records | "BuildBaselines" >> BuildBaselines()
    scored = events.records | "Score" >> ScoreEvents(
        baselines, window=hf.window, zscore_threshold=own.zscore_threshold, min_history=own.min_history,
        count_threshold=own.count_threshold, cooldown=hf.cooldown, allowed_lateness=hf.allowed_lateness,
    )
    dead_letters = (events.dead_letters, history.dead_letters, scored["dead_letters"])
    return {
        "alerts": scored["alerts"],
        "aggregates": scored["aggregates"],
        "baselines": baselines,
        "late": scored["late"],
        "dead_letters": dead_letters | "AllDeadLetters" >> beam.Flatten(),
    }


def sinks(options: PipelineOptions) -> dict[str, str]:
    return file_sinks(options, formatted=("alerts", "aggregates"), parquet=("baselines",),
                      jsonl=("dead_letters", "late"))


SPEC = PipelineSpec(
    name="__NAME__",
    description="__NAME__: per-entity baselines from history + scoring of events (z-score, count per window)",
    build=build,
    sinks=sinks,
    options_class=__CLASS__Options,
    common=("mode", "input", "output", "output_format", "duration", "window", "allowed_lateness", "cooldown",
            "timestamp_unit", "columnar", "print_alerts"),
    defaults=DEFAULTS,
    validate=validate,
    generators=(SyntheticEvents,),
)
'''

_CONFTEST = '''\
"""Registers the pipeline, so synthetic://__NAME__-events resolves before `pip install -e .` too."""

from hybridflow import register_pipeline

from __NAME__ import SPEC

register_pipeline(SPEC)
'''

_TESTS = '''\
"""__NAME__: the generator is deterministic, batch and streaming agree, the whole pipeline runs."""

import json

import apache_beam as beam

from hybridflow.io.synthetic import generate_records
from hybridflow.pipelines.run import run_pipeline
from hybridflow.schemas import to_timestamp
from hybridflow.testing import Collect, CreateEvents, EventStream, batch_pipeline, collected, streaming_pipeline

from __NAME__ import SPEC, BuildBaselines, Event, ScoreEvents, SyntheticEvents


def _events(seed, count, **params):
    config = SyntheticEvents(seed=seed, count=count, malformed=0.0, disorder=0.0, late=0.0, **params)
    return [Event(**{**row, "event_time": to_timestamp(row["event_time"])})
            for row in map(json.loads, generate_records(config, 0, count))]


def test_the_generator_is_deterministic():
    config = SyntheticEvents(seed=7, count=300)
    assert list(generate_records(config, 0, 300)) == list(generate_records(config, 0, 300))
    assert list(generate_records(config, 100, 200)) == list(generate_records(config, 0, 300))[100:200]


def _baselines(history, out):
    with batch_pipeline() as p:
        _ = p | CreateEvents(history) | BuildBaselines() | Collect(out / "baselines")
    return collected(out / "baselines")


def _score(pipeline, source, baselines, out):
    with pipeline as p:
        # computed once by the batch layer: Beam's bundle-based DirectRunner (the streaming
        # test runner) cannot run the CombinePerKey of BuildBaselines in a streaming pipeline
        table = p | "Baselines" >> beam.Create(baselines)
        # no cooldown: which alert a cooldown keeps depends on the order the records arrive in
        scored = p | source | ScoreEvents(table, count_threshold=8, zscore_threshold=3.0, cooldown=0.0)
        scored["alerts"] | "SaveAlerts" >> Collect(out / "alerts")
        scored["aggregates"] | "SaveAggregates" >> Collect(out / "aggregates")
    alerts = sorted((a.rule, a.key, a.event_time, round(a.value, 6)) for a in collected(out / "alerts"))
    windows = sorted((r.entity_id, r.window_start, r.events, r.max_value) for r in collected(out / "aggregates"))
    return alerts, windows


def test_batch_and_streaming_give_the_same_alerts_and_windows(tmp_path):
    baselines = _baselines(_events(1, 200, entities=3), tmp_path)
    live = _events(2, 120, entities=3, spike=0.05, rate=0.5)
    batch = _score(batch_pipeline(), CreateEvents(live), baselines, tmp_path / "batch")
    stream = _score(streaming_pipeline(), EventStream(live), baselines, tmp_path / "stream")
    assert batch == stream
    assert {rule for rule, *_ in batch[0]} == {"spike", "busy"}  # both rules fired


def test_the_pipeline_runs_in_batch(tmp_path):
    summary = run_pipeline(SPEC, SPEC.options(["--runner=FnApiRunner", f"--output={tmp_path}",
                                               "--input=synthetic://__NAME__-events?count=300&seed=2",
                                               "--history=synthetic://__NAME__-events?count=500&seed=1"]))
    assert summary.state.endswith("DONE")
    assert summary.records_read == 300 + 500
    assert list(tmp_path.glob("alerts*.jsonl")) and list(tmp_path.glob("baselines*.parquet"))
'''


def scaffold_files(name: str) -> dict[str, str]:
    """The files of a new pipeline package ``name``: ``{relative path: text}``."""
    if not name.isidentifier() or keyword.iskeyword(name) or not name.islower():
        raise UsageError(f"hybridflow new {name!r}: the name must be a lower-case Python identifier, e.g. my_pipeline")
    class_name = "".join(part.title() for part in name.split("_") if part)
    texts = {
        "pyproject.toml": _PYPROJECT,
        "README.md": _README,
        f"{name}/__init__.py": _INIT,
        f"{name}/records.py": _RECORDS,
        f"{name}/generator.py": _GENERATOR,
        f"{name}/pipeline.py": _PIPELINE,
        "tests/conftest.py": _CONFTEST,
        f"tests/test_{name}.py": _TESTS,
    }
    return {path: text.replace("__NAME__", name).replace("__CLASS__", class_name) for path, text in texts.items()}


def write_scaffold(name: str, directory: Optional[str] = None) -> pathlib.Path:
    """Writes :func:`scaffold_files` into ``directory`` (default ``./name``),
    which must not exist or be empty; returns it."""
    files = scaffold_files(name)
    root = pathlib.Path(directory or name)
    if root.exists() and any(root.iterdir()):
        raise UsageError(f"{root}: exists and is not empty; give another --dir")
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return root

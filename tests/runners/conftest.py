"""The runner matrix: one Prism, one Flink and one Spark job server for the whole session.

Pipelines reach them with ``--job_endpoint`` (``server.flags(...)``), so a
session starts one JVM and one Prism, and stops them at the end. A runner that
is not provisioned or does not start skips its tests, or fails them when
``HYBRIDFLOW_REQUIRE_SERVICES=1`` (CI).
"""

import pytest

from hybridflow.testing.runners import FlinkJobServer, PrismJobServer, RunnerUnavailable, SparkJobServer
from hybridflow.testing.services.pytest_plugin import unavailable

# name -> (marks, fixture that gives the job server, or None for the in-process FnApiRunner)
RUNNERS = {
    "fnapi": ((), None),
    "prism": ((pytest.mark.prism,), "prism_server"),
    "flink": ((pytest.mark.flink,), "flink_server"),
    "spark": ((pytest.mark.spark,), "spark_server"),
}


def runner_params(*names):
    """``pytest.param`` per runner name, with its marker (use with the ``runner`` fixture)."""
    return [pytest.param(name, marks=RUNNERS[name][0], id=name) for name in names]


def _start(server):
    try:
        return server.start()
    except RunnerUnavailable as exc:
        unavailable(f"{server.name} cannot start: {exc}")


@pytest.fixture(scope="session")
def prism_server():
    server = _start(PrismJobServer())
    yield server
    server.stop()


@pytest.fixture(scope="session")
def flink_server():
    server = _start(FlinkJobServer())
    yield server
    server.stop()


@pytest.fixture(scope="session")
def spark_server():
    server = _start(SparkJobServer())
    yield server
    server.stop()


class Runner:
    """A runner of the matrix: ``flags(*extra)`` runs a pipeline on it."""

    def __init__(self, name, server):
        self.name = name
        self._server = server

    def flags(self, *extra):
        if self._server is None:
            return ["--runner=FnApiRunner", *extra]
        return self._server.flags(*extra)

    def __repr__(self):
        return self.name


@pytest.fixture
def runner(request):
    """The runner named by the test's parameter (see :func:`runner_params`)."""
    name = request.param
    fixture = RUNNERS[name][1]
    return Runner(name, request.getfixturevalue(fixture) if fixture else None)


def final_panes(rows, key_field):
    """``{(key, window_start, window_end): row fields}`` of the last non-EARLY pane
    of each key and window: what a streaming run settles on, and the only pane
    a batch run has."""
    final = {}
    for row in rows:
        fields = row._asdict() if hasattr(row, "_asdict") else dict(row)
        if fields["pane"] == "EARLY":
            continue
        key = (fields[key_field], fields["window_start"], fields["window_end"])
        if key not in final or fields["pane_index"] > final[key]["pane_index"]:
            final[key] = fields
    return {k: {f: v for f, v in row.items() if f not in ("pane", "pane_index")} for k, row in final.items()}

"""The runner matrix over the session's Prism, Flink and Spark job servers (the
``prism_server`` / ``flink_server`` / ``spark_server`` fixtures of tests/conftest.py)."""

import pytest

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

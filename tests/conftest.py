"""Shared fixtures. Runners are chosen explicitly in every pipeline test:
DirectRunner would silently pick Prism, FnApiRunner or the bundle runner."""

import os
import pathlib
import sys

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["hybridflow.testing.services.pytest_plugin"]

REPO = pathlib.Path(__file__).resolve().parent.parent
REQUIRE_SERVICES = os.environ.get("HYBRIDFLOW_REQUIRE_SERVICES") == "1"


# Hypothesis profiles: `ci` (the default; a fixed seed, so every run tries the same examples) and
# `deep` (random, ten times the examples: `make test-deep`). Tests give their example count as
# `settings(max_examples=examples(N))`.
_PROPERTY_BASE = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                      print_blob=True)
settings.register_profile("ci", derandomize=True, **_PROPERTY_BASE)
settings.register_profile("deep", derandomize=False, **_PROPERTY_BASE)
PROPERTY_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROPERTY_PROFILE)


def examples(n: int) -> int:
    """The example count of a property test: ``n`` in the ``ci`` profile, ten times that in ``deep``."""
    return n * 10 if PROPERTY_PROFILE == "deep" else n


# --------------------------------------------------------------------------
# One Prism, one Flink and one Spark job server for the whole session. Pipelines reach them
# with ``--job_endpoint`` (``server.flags(...)``), so a session starts one JVM
# and one Prism, and stops them at the end. A runner that is not provisioned or
# does not start skips its tests, or fails them when
# ``HYBRIDFLOW_REQUIRE_SERVICES=1`` (CI).


def _start(server):
    from hybridflow.testing.runners import RunnerUnavailable
    from hybridflow.testing.services.pytest_plugin import unavailable

    try:
        return server.start()
    except RunnerUnavailable as exc:
        unavailable(f"{server.name} cannot start: {exc}")


@pytest.fixture(scope="session")
def prism_server():
    from hybridflow.testing.runners import PrismJobServer

    server = _start(PrismJobServer())
    yield server
    server.stop()


@pytest.fixture(scope="session")
def flink_server():
    from hybridflow.testing.runners import FlinkJobServer

    server = _start(FlinkJobServer())
    yield server
    server.stop()


@pytest.fixture(scope="session")
def spark_server():
    from hybridflow.testing.runners import SparkJobServer

    server = _start(SparkJobServer())
    yield server
    server.stop()


@pytest.fixture
def hybridflow_cmd():
    """The CLI as a subprocess command (the installed console script's module)."""
    return [sys.executable, "-m", "hybridflow"]


# --------------------------------------------------------------------------
# Skips are counted and explained at the end of every run; under
# HYBRIDFLOW_REQUIRE_SERVICES=1 (CI) a skipped test fails the run: a test
# that CI requires never skips silently.

_SKIPPED: dict[str, list[str]] = {}


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _SKIPPED.setdefault(reason.removeprefix("Skipped: "), []).append(report.nodeid)


def pytest_terminal_summary(terminalreporter):
    count = sum(len(ids) for ids in _SKIPPED.values())
    terminalreporter.write_sep("=", f"hybridflow: {count} test(s) skipped")
    for reason, ids in sorted(_SKIPPED.items(), key=lambda item: -len(item[1])):
        terminalreporter.write_line(f"  {len(ids):4d}  {reason}  (e.g. {ids[0]})")
    if count and REQUIRE_SERVICES:
        terminalreporter.write_line("  HYBRIDFLOW_REQUIRE_SERVICES=1: a skipped test fails the run", red=True)


def pytest_sessionfinish(session, exitstatus):
    if REQUIRE_SERVICES and _SKIPPED and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

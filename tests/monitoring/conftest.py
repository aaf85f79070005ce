"""Fixtures of the monitoring tests: Prism, Prometheus, Chromium, webhook receivers.

A missing binary skips the test with the reason, or fails it when
``HYBRIDFLOW_REQUIRE_SERVICES=1`` (CI)."""

import glob
import os
import pathlib

import pytest

from hybridflow import BEAM_VERSION
from tests.conftest import REQUIRE_SERVICES
from tests.monitoring.services import HeadlessChromium, PrometheusServer, Unavailable, WebhookReceiver


def unavailable(reason: str):
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (HYBRIDFLOW_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def prism_location():
    """``$HYBRIDFLOW_PRISM``, or the Prism binary of the pinned Beam version in
    Beam's cache (where ``make tools`` puts it and PrismRunner looks)."""
    explicit = os.environ.get("HYBRIDFLOW_PRISM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    cache = pathlib.Path.home() / ".apache_beam" / "cache" / "prism" / "bin"
    found = glob.glob(str(cache / f"apache_beam-v{BEAM_VERSION}-prism-*"))
    return sorted(found)[0] if found else None


@pytest.fixture(scope="session")
def prism_flags():
    """Flags that run a pipeline on Prism."""
    location = prism_location()
    if location is None:
        unavailable(f"no Prism binary for Beam {BEAM_VERSION} (make tools, or set HYBRIDFLOW_PRISM)")
    flags = ["--runner=PrismRunner"]
    if os.environ.get("HYBRIDFLOW_PRISM"):
        flags.append(f"--prism_location={location}")
    return flags


def prism_pipeline(flags, *more):
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline

    return TestPipeline(options=PipelineOptions([*flags, *more]))


@pytest.fixture
def prometheus():
    """A factory: ``prometheus(targets)`` starts a Prometheus scraping every second."""
    started = []

    def start(targets):
        try:
            server = PrometheusServer(targets, scrape_interval="1s")
        except Unavailable as exc:
            unavailable(str(exc))
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def chromium():
    try:
        browser = HeadlessChromium()
    except Unavailable as exc:
        unavailable(str(exc))
    with browser:
        yield browser


@pytest.fixture
def webhook():
    """A factory: ``webhook(script)`` starts a :class:`WebhookReceiver`."""
    started = []

    def start(script=((200, {}),)):
        receiver = WebhookReceiver(script).__enter__()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.__exit__(None, None, None)

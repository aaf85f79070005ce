"""Fixtures of the monitoring tests: Prism, Prometheus, Chromium, webhook receivers.

A missing binary skips the test with the reason, or fails it when
``HYBRIDFLOW_REQUIRE_SERVICES=1`` (CI)."""

import pytest

from hybridflow.testing.services.pytest_plugin import unavailable
from tests.monitoring.services import HeadlessChromium, PrometheusServer, PushgatewayServer, Unavailable, WebhookReceiver


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


def _serve(make):
    """Runs what ``make()`` builds for the fixture's scope; a missing binary skips (fails in CI)."""
    try:
        server = make()
    except Unavailable as exc:
        unavailable(str(exc))
    with server:
        yield server


@pytest.fixture
def pushgateway():
    """A real Prometheus Pushgateway on a free loopback port; stopped after the test."""
    yield from _serve(PushgatewayServer)


@pytest.fixture(scope="session")
def chromium():
    yield from _serve(HeadlessChromium)


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

"""The Pub/Sub fake: our small Go main over ``cloud.google.com/go/pubsub/v2/pstest``.

:class:`PubSubEmulator` exports ``PUBSUB_EMULATOR_HOST`` while it runs, which
google-cloud-pubsub (and so Beam's Pub/Sub IO) honours: plain gRPC, no
credentials. Topics and subscriptions live in memory until it stops.
"""

from __future__ import annotations

from typing import Mapping, Optional

from hybridflow.testing.services._process import LoopbackBinary

__all__ = ["PubSubEmulator", "PROJECT"]

PROJECT = "hybridflow-test"  # Beam validates project ids: 6-30 characters


class PubSubEmulator(LoopbackBinary):
    """pstest on ``127.0.0.1:<free port>``; ``host`` is the ``PUBSUB_EMULATOR_HOST`` value."""

    name = "pubsub"
    binary = "pstest-server"
    description = "the Pub/Sub fake (pstest-server)"

    @property
    def env(self) -> Mapping[str, str]:
        return {"PUBSUB_EMULATOR_HOST": self.host, "PUBSUB_PROJECT_ID": PROJECT}

    def _arguments(self) -> list[str]:
        return ["-port", str(self.port)]

    # -- admin helpers (the env var must be set: call them while the service runs)
    def create_topic(self, name: str, project: str = PROJECT) -> str:
        """Creates a topic; returns its path ``projects/P/topics/T``."""
        from google.cloud import pubsub_v1

        client = pubsub_v1.PublisherClient()
        path = client.topic_path(project, name)
        client.create_topic(name=path)
        return path

    def create_subscription(self, topic_path: str, name: str, project: Optional[str] = None) -> str:
        """Creates a pull subscription on ``topic_path``; returns ``projects/P/subscriptions/S``."""
        from google.cloud import pubsub_v1

        client = pubsub_v1.SubscriberClient()
        path = client.subscription_path(project or topic_path.split("/")[1], name)
        client.create_subscription(name=path, topic=topic_path, ack_deadline_seconds=60)
        client.close()
        return path

    def publish(self, topic_path: str, messages) -> int:
        """Publishes ``(data, attributes)`` pairs; returns how many."""
        from google.cloud import pubsub_v1

        client = pubsub_v1.PublisherClient()
        futures = [client.publish(topic_path, data, **dict(attributes or {})) for data, attributes in messages]
        for f in futures:
            f.result(30)
        return len(futures)

    def pull(self, subscription_path: str, count: int, timeout: float = 30.0) -> list:
        """Pulls and acknowledges up to ``count`` messages (waits up to ``timeout``);
        returns ``google.pubsub_v1.PubsubMessage`` objects."""
        import time

        from google.cloud import pubsub_v1

        client = pubsub_v1.SubscriberClient()
        out: list = []
        deadline = time.monotonic() + timeout
        try:
            while len(out) < count and time.monotonic() < deadline:
                response = client.pull(subscription=subscription_path, max_messages=count - len(out),
                                       return_immediately=True, timeout=10)
                if response.received_messages:
                    client.acknowledge(subscription=subscription_path,
                                       ack_ids=[m.ack_id for m in response.received_messages])
                    out.extend(m.message for m in response.received_messages)
                else:
                    time.sleep(0.2)
        finally:
            client.close()
        return out

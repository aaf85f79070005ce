"""Batched writes that a service may accept only in part (DynamoDB, Kinesis): re-send the rest."""

from __future__ import annotations

import time
from typing import Callable, Sequence, TypeVar

from hybridflow.errors import ConnectorError

__all__ = ["send_with_retries"]

T = TypeVar("T")


def send_with_retries(
    send: Callable[[list[T]], Sequence[T]],
    requests: Sequence[T],
    what: str,
    fix: str,
    max_attempts: int = 8,
    backoff: float = 0.05,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Calls ``send(requests)``, which returns the requests the service did not
    process, and sends those again after ``backoff * 2**(attempt-1)`` seconds,
    up to ``max_attempts`` calls; then raises :class:`ConnectorError` naming
    ``what`` and ``fix``. Returns how many requests were re-sent.

    >>> calls = []
    >>> def send(batch):
    ...     calls.append(list(batch))
    ...     return batch[1:] if len(calls) == 1 else []
    >>> send_with_retries(send, ["a", "b", "c"], "test", "no fix", sleep=lambda s: None), calls
    (2, [['a', 'b', 'c'], ['b', 'c']])
    """
    pending = list(requests)
    resent = 0
    for attempt in range(max_attempts):
        if attempt:
            sleep(backoff * 2 ** (attempt - 1))
            resent += len(pending)
        pending = list(send(pending))
        if not pending:
            return resent
    raise ConnectorError(f"{what}: {len(pending)} records still unprocessed after {max_attempts} attempts; {fix}")

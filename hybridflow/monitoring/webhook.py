"""Alert delivery to a webhook: one HTTP POST of JSON per alert, retried,
concurrent, within a deadline.

:class:`WebhookClient` posts a JSON object with the headers
``Content-Type: application/json`` and ``Idempotency-Key: <alert_id>`` (the
same alert always has the same key, so a receiver can drop the copies that
retries and replays deliver). Answers 429 and 5xx, refused connections and
timeouts are retried with exponential backoff (the first retry at once, then
``2 * backoff``, ``4 * backoff`` ... capped at ``max_backoff``, as urllib3's
``Retry`` does), honouring a ``Retry-After`` header (capped at
``max_backoff`` too); other 4xx answers are final. Every delivery has a
``deadline``: no attempt starts, and no wait or answer is waited for, past
it, whatever ``timeout`` and ``retries`` allow.

:class:`PostAlerts` (a PTransform) delivers a PCollection of alerts, up to
``concurrency`` POSTs at once per DoFn instance (a thread pool made in
``setup()`` and shut down in ``teardown()``); each alert is delivered or
given up within ``deadline`` seconds of reaching the step, so a webhook that
hangs delays a bundle by about one deadline, not by retries times timeouts
per alert. An alert that cannot be delivered becomes a dead letter with the
reason ``webhook_rejected`` (a final 4xx), ``webhook_failed`` (still 429/5xx
after the retries), ``webhook_unreachable`` (no answer after the retries) or
``webhook_timeout`` (the deadline passed first); an alert given up at its
deadline while its POST was in flight may still reach the receiver, with
its idempotency key. ``WriteTo("https://...")`` and
``WriteTo("webhook+http://...")`` are the same sink; the query parameters
``webhook_retries``, ``webhook_backoff``, ``webhook_max_backoff``,
``webhook_timeout``, ``webhook_deadline`` and ``webhook_concurrency``
configure it and are not sent.

Webhook URLs often hold their token in the path or query
(``https://hooks.slack.com/services/T000/B000/XXXX``): messages, dead letters
and the HTTP library's log lines show them redacted
(:mod:`hybridflow.redaction`).
"""

from __future__ import annotations

import collections
import dataclasses
import concurrent.futures
import json
import logging
import threading
import time
import urllib.parse
from typing import Any, Mapping, Optional

import apache_beam as beam
import requests
from apache_beam.utils.windowed_value import WindowedValue
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from hybridflow.errors import ConnectorError, InvalidUriError, SchemaError
from hybridflow.metrics import CountElements, EventTimeLag, counter
from hybridflow.redaction import RedactingFilter, redact
from hybridflow.schemas import DeadLetter, fields_of, to_plain
from hybridflow.transforms.dead_letters import DEAD_LETTERS, DeadLetterCounter

__all__ = ["WebhookClient", "WebhookError", "Delivery", "PostAlerts", "WriteToWebhook", "WEBHOOK_SCHEMES"]

WEBHOOK_SCHEMES = ("http", "https", "webhook+http", "webhook+https")
RETRY_STATUSES = frozenset([429, *range(500, 600)])
_URI_PARAMS = {"webhook_retries": "retries", "webhook_backoff": "backoff",
               "webhook_max_backoff": "max_backoff", "webhook_timeout": "timeout",
               "webhook_deadline": "deadline", "webhook_concurrency": "concurrency"}
_INT_PARAMS = ("webhook_retries", "webhook_concurrency")
# alerts a DoFn instance holds at once (in flight or waiting for a thread)
_MAX_PENDING = 1000
# how much longer than its deadline the step waits for a POST before giving it up
# (a request blocked where the socket timeout does not reach, e.g. a name lookup)
_GRACE = 1.0


class WebhookError(ConnectorError):
    """An alert could not be delivered; ``reason`` is the dead-letter reason."""

    def __init__(self, reason: str, message: str, status: Optional[int] = None):
        super().__init__(message)
        self.reason = reason
        self.status = status


@dataclasses.dataclass(frozen=True)
class Delivery:
    """A delivered POST: the final HTTP status and how many attempts it took."""

    status: int
    attempts: int


class WebhookClient:
    """POSTs JSON to ``url`` with retries; open it (or use ``with``) before posting.

    Only configuration is pickled: the HTTP session is made by :meth:`open`.
    :meth:`post` may be called from several threads at once.

    Args:
      url: ``http://`` or ``https://`` (a ``webhook+`` prefix is dropped).
      timeout: seconds to connect and to wait for an answer, per attempt.
      retries: retries after the first attempt.
      backoff: seconds before the second retry, doubling after each one (the
        first retry is immediate, as urllib3 does).
      max_backoff: the longest wait between attempts, also for Retry-After.
      headers: extra headers (e.g. ``Authorization``).
      deadline: seconds a delivery may take in all, attempts and waits
        included; then it fails as ``webhook_timeout``.
      concurrency: connections kept open to the webhook (PostAlerts posts
        this many alerts at once).
    """

    def __init__(
        self,
        url: str,
        timeout: float = 10.0,
        retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 60.0,
        headers: Optional[Mapping[str, str]] = None,
        deadline: float = 30.0,
        concurrency: int = 8,
    ):
        url = url[len("webhook+"):] if url.startswith("webhook+") else url
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidUriError(f"webhook {redact(url)!r}: give an http:// or https:// URL with a host")
        if retries < 0 or timeout <= 0 or backoff < 0 or max_backoff < 0 or deadline <= 0 or concurrency < 1:
            raise InvalidUriError(
                f"webhook {redact(url)!r}: retries >= 0, timeout > 0, backoff >= 0, max_backoff >= 0, "
                "deadline > 0 and concurrency >= 1 are required"
            )
        self.url = url
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.headers = dict(headers or {})
        self.deadline = float(deadline)
        self.concurrency = int(concurrency)
        self._session: Optional[requests.Session] = None
        self._closed: Optional[threading.Event] = None
        self._log_filter: Optional[RedactingFilter] = None

    @property
    def shown(self) -> str:
        """The URL as messages show it (path, query and password redacted)."""
        return redact(self.url)

    def open(self) -> "WebhookClient":
        session = requests.Session()
        adapter = HTTPAdapter(max_retries=0, pool_connections=1, pool_maxsize=self.concurrency)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers.update({"User-Agent": "hybridflow-alerts", **self.headers})
        self._session = session
        self._closed = threading.Event()
        # urllib3 logs each request line (path and query) at DEBUG
        self._log_filter = RedactingFilter(self.url)
        logging.getLogger("urllib3.connectionpool").addFilter(self._log_filter)
        return self

    def close(self) -> None:
        if self._closed is not None:
            self._closed.set()  # ends waits between attempts
        if self._session is not None:
            self._session.close()
            self._session = None
        if self._log_filter is not None:
            logging.getLogger("urllib3.connectionpool").removeFilter(self._log_filter)
            self._log_filter = None

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()

    def __getstate__(self):
        return {**self.__dict__, "_session": None, "_closed": None, "_log_filter": None}

    def _wait_before(self, failures: int, response: Optional[requests.Response]) -> float:
        """Seconds before the next attempt after ``failures`` failed ones (urllib3's schedule)."""
        after = response.headers.get("Retry-After") if response is not None else None
        if after:
            try:
                return min(float(Retry(0).parse_retry_after(after)), self.max_backoff)
            except Exception:  # noqa: BLE001 - a malformed header: back off as usual
                pass
        return 0.0 if failures <= 1 else min(self.backoff * 2 ** (failures - 1), self.max_backoff)

    def post(self, payload: Mapping[str, Any], idempotency_key: str, deadline_at: Optional[float] = None) -> Delivery:
        """POSTs ``payload``; returns the :class:`Delivery` or raises :class:`WebhookError`.

        ``deadline_at`` (``time.monotonic()`` seconds, default now +
        ``deadline``) bounds the whole delivery."""
        session, closed = self._session, self._closed
        if session is None or closed is None:
            raise ConnectorError("WebhookClient.post before open(): use `with WebhookClient(url) as client:`")
        if deadline_at is None:
            deadline_at = time.monotonic() + self.deadline
        body = json.dumps(payload, ensure_ascii=False, allow_nan=False, default=str).encode("utf-8")
        headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key}
        attempts, last = 0, "not attempted"
        while True:
            remaining = deadline_at - time.monotonic()
            if remaining <= 0 or closed.is_set():
                raise WebhookError(
                    "webhook_timeout",
                    f"POST {self.shown}: not delivered within its {self.deadline:g}s deadline "
                    f"({attempts} attempt(s); last: {last})",
                )
            attempts += 1
            response = None
            try:
                response = session.post(self.url, data=body, headers=headers, timeout=min(self.timeout, remaining))
            except requests.RequestException as exc:
                last = redact(f"{type(exc).__name__}: {exc}", self.url)[:300]
            else:
                if response.ok:
                    return Delivery(response.status_code, attempts)
                last = f"HTTP {response.status_code}"
                if response.status_code not in RETRY_STATUSES:
                    raise WebhookError(
                        "webhook_rejected",
                        f"POST {self.shown}: HTTP {response.status_code} after {attempts} attempt(s): "
                        f"{redact(response.text[:200], self.url)!r}",
                        response.status_code,
                    )
            if attempts > self.retries:
                if response is None:
                    raise WebhookError(
                        "webhook_unreachable", f"POST {self.shown}: no answer after {self.retries} retries: {last}"
                    )
                raise WebhookError(
                    "webhook_failed",
                    f"POST {self.shown}: HTTP {response.status_code} after {attempts} attempt(s): "
                    f"{redact(response.text[:200], self.url)!r}",
                    response.status_code,
                )
            wait = self._wait_before(attempts, response)
            if time.monotonic() + wait >= deadline_at:
                last += f"; the next attempt was due {wait:g}s later, past the deadline"
                deadline_at = time.monotonic()  # give up now rather than sleep into the deadline
                continue
            closed.wait(wait)


class _PostFn(beam.DoFn):
    """Posts alerts on a pool of ``client.concurrency`` threads; emits each
    (delivered, or a dead letter) once its delivery ended, at the latest in
    ``finish_bundle``."""

    def __init__(self, client: WebhookClient, id_field: str, stage: str):
        self._client = client
        self._id_field = id_field
        self._stage = stage

    def setup(self):
        self._client.open()
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=self._client.concurrency, thread_name_prefix="hybridflow-webhook"
        )
        self._pending: collections.deque = collections.deque()
        self._dead = DeadLetterCounter()
        self._in = counter("records_in")
        self._out = counter("records_out")
        self._retries = counter("webhook_retries")
        self._lag = EventTimeLag()

    def start_bundle(self):
        self._pending.clear()

    def process(self, record, timestamp=beam.DoFn.TimestampParam, window=beam.DoFn.WindowParam):
        self._in.inc()
        self._lag.observe(timestamp)
        deadline_at = time.monotonic() + self._client.deadline
        key = str(getattr(record, self._id_field))
        future = self._pool.submit(self._client.post, to_plain(record), key, deadline_at)
        self._pending.append((WindowedValue(record, timestamp, [window]), future, deadline_at))
        while len(self._pending) > _MAX_PENDING:
            yield from self._result(*self._pending.popleft())

    def finish_bundle(self):
        while self._pending:
            yield from self._result(*self._pending.popleft())

    def _result(self, element: WindowedValue, future: concurrent.futures.Future, deadline_at: float):
        try:
            delivery = future.result(timeout=max(0.0, deadline_at - time.monotonic()) + _GRACE)
        except concurrent.futures.TimeoutError:
            future.cancel()
            error = WebhookError(
                "webhook_timeout", f"POST {self._client.shown}: no outcome within its {self._client.deadline:g}s deadline"
            )
        except WebhookError as exc:
            error = exc
        else:
            self._retries.inc(delivery.attempts - 1)
            self._out.inc()
            yield element
            return
        dead = self._dead.dead_letter(self._stage, error.reason, str(error), element.value)
        yield beam.pvalue.TaggedOutput(dead.tag, element.with_value(dead.value))

    def teardown(self):
        self._client.close()  # waits between attempts end; attempts end by their deadline
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


class PostAlerts(beam.PTransform):
    """POSTs each alert as JSON to a webhook (see the module docstring).

    Works on any schema'd records with an id field (``Alert`` by default);
    bounded or unbounded alike. The client is created on the worker.

    Args:
      url: the webhook, ``http(s)://...``.
      id_field: the field sent as the ``Idempotency-Key`` header.
      timeout, retries, backoff, max_backoff, headers: see :class:`WebhookClient`.
      deadline: seconds from an alert reaching the step until it is delivered
        or a ``webhook_timeout`` dead letter, retries and waits included.
      concurrency: POSTs in flight at once per DoFn instance.

    Returns a tuple-like result ``(delivered, dead_letters)`` with attributes
    ``.delivered`` (the alerts the webhook accepted) and ``.dead_letters``.

    Example::

        delivery = alerts | PostAlerts("https://hooks.example.com/fraud", retries=3)
        delivery.dead_letters | WriteTo("out/undelivered.jsonl")
    """

    def __init__(
        self,
        url: str,
        id_field: str = "alert_id",
        timeout: float = 10.0,
        retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 60.0,
        headers: Optional[Mapping[str, str]] = None,
        deadline: float = 30.0,
        concurrency: int = 8,
    ):
        super().__init__()
        self._client = WebhookClient(url, timeout, retries, backoff, max_backoff, headers, deadline, concurrency)
        self._id_field = id_field

    @property
    def url(self) -> str:
        return self._client.url

    def expand(self, pcoll):
        try:
            names = [f.name for f in fields_of(pcoll.element_type)]
        except SchemaError:
            names = None  # untyped input: the id field is read at run time
        if names is not None and self._id_field not in names:
            raise SchemaError(f"PostAlerts: id_field {self._id_field!r} is not a field of the input ({', '.join(names)})")
        result = pcoll | "Post" >> beam.ParDo(_PostFn(self._client, self._id_field, self.label)).with_outputs(
            DEAD_LETTERS, main="delivered"
        )
        result.delivered.element_type = pcoll.element_type
        result[DEAD_LETTERS].element_type = DeadLetter
        return result


class WriteToWebhook(PostAlerts):
    """:class:`PostAlerts` configured from a URI, the sink behind
    ``WriteTo("https://...")`` / ``WriteTo("webhook+http://...")``.

    As a sink it returns only the dead letters of the records it could not
    deliver, and counts the delivered ones in ``records_written``.
    """

    FAILS_PER_RECORD = True

    def expand(self, pcoll):
        result = super().expand(pcoll)
        _ = result.delivered | "CountWritten" >> CountElements("records_written")
        return result[DEAD_LETTERS]

    @classmethod
    def from_uri(cls, uri: str) -> "WriteToWebhook":
        parts = urllib.parse.urlsplit(uri)
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        settings: dict[str, Any] = {}
        for name, value in query:
            if name in _URI_PARAMS:
                try:
                    settings[_URI_PARAMS[name]] = int(value) if name in _INT_PARAMS else float(value)
                except ValueError:
                    raise InvalidUriError(f"{redact(uri)!r}: {name}={value!r} must be a number") from None
        kept = urllib.parse.urlencode([(k, v) for k, v in query if k not in _URI_PARAMS])
        return cls(urllib.parse.urlunsplit(parts._replace(query=kept)), **settings)

"""Alert delivery to a webhook: one HTTP POST of JSON per alert, retried.

:class:`WebhookClient` posts a JSON object with the headers
``Content-Type: application/json`` and ``Idempotency-Key: <alert_id>`` (the
same alert always has the same key, so a receiver can drop the copies that
retries and replays deliver). Answers 429 and 5xx, refused connections and
timeouts are retried with exponential backoff (``backoff``, ``2 * backoff``,
``4 * backoff`` ... capped at ``max_backoff``), honouring a ``Retry-After``
header (capped at ``max_backoff`` too); other 4xx answers are final. The
retries are urllib3's ``Retry`` under a ``requests`` session.

:class:`PostAlerts` (a PTransform) delivers a PCollection of alerts; an alert
that cannot be delivered becomes a dead letter with the reason
``webhook_rejected`` (a final 4xx), ``webhook_failed`` (still 429/5xx after
the retries) or ``webhook_unreachable`` (no answer). ``WriteTo("https://...")``
and ``WriteTo("webhook+http://...")`` are the same sink; the query parameters
``webhook_retries``, ``webhook_backoff``, ``webhook_max_backoff`` and
``webhook_timeout`` configure it and are not sent.
"""

from __future__ import annotations

import dataclasses
import json
import urllib.parse
from typing import Any, Mapping, Optional

import apache_beam as beam
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from hybridflow.errors import ConnectorError, InvalidUriError, SchemaError
from hybridflow.metrics import CountElements, EventTimeLag, counter
from hybridflow.schemas import DeadLetter, fields_of, to_plain
from hybridflow.transforms.dead_letters import DEAD_LETTERS, DeadLetterCounter

__all__ = ["WebhookClient", "WebhookError", "Delivery", "PostAlerts", "WriteToWebhook", "WEBHOOK_SCHEMES"]

WEBHOOK_SCHEMES = ("http", "https", "webhook+http", "webhook+https")
RETRY_STATUSES = frozenset([429, *range(500, 600)])
_URI_PARAMS = {"webhook_retries": "retries", "webhook_backoff": "backoff",
               "webhook_max_backoff": "max_backoff", "webhook_timeout": "timeout"}


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


class _Retry(Retry):
    """urllib3's Retry, honouring Retry-After on every retried status, at most ``backoff_max``."""

    RETRY_AFTER_STATUS_CODES = RETRY_STATUSES

    def get_retry_after(self, response):
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, self.backoff_max)


class WebhookClient:
    """POSTs JSON to ``url`` with retries; open it (or use ``with``) before posting.

    Only configuration is pickled: the HTTP session is made by :meth:`open`.

    Args:
      url: ``http://`` or ``https://`` (a ``webhook+`` prefix is dropped).
      timeout: seconds to connect and to wait for an answer, per attempt.
      retries: retries after the first attempt.
      backoff: seconds before the second retry, doubling after each one (the
        first retry is immediate, as urllib3 does).
      max_backoff: the longest wait between attempts, also for Retry-After.
      headers: extra headers (e.g. ``Authorization``).
    """

    def __init__(
        self,
        url: str,
        timeout: float = 10.0,
        retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 60.0,
        headers: Optional[Mapping[str, str]] = None,
    ):
        url = url[len("webhook+"):] if url.startswith("webhook+") else url
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidUriError(f"webhook {url!r}: give an http:// or https:// URL with a host")
        if retries < 0 or timeout <= 0 or backoff < 0 or max_backoff < 0:
            raise InvalidUriError(
                f"webhook {url!r}: retries >= 0, timeout > 0, backoff >= 0 and max_backoff >= 0 are required"
            )
        self.url = url
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.headers = dict(headers or {})
        self._session: Optional[requests.Session] = None

    def open(self) -> "WebhookClient":
        retry = _Retry(
            total=self.retries,
            connect=self.retries,
            read=self.retries,
            status=self.retries,
            other=0,
            allowed_methods=None,  # POST too: the Idempotency-Key makes a repeat harmless
            status_forcelist=RETRY_STATUSES,
            backoff_factor=self.backoff,
            backoff_max=self.max_backoff,
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        session = requests.Session()
        adapter = HTTPAdapter(max_retries=retry)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers.update({"User-Agent": "hybridflow-alerts", **self.headers})
        self._session = session
        return self

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()

    def __getstate__(self):
        return {**self.__dict__, "_session": None}

    def post(self, payload: Mapping[str, Any], idempotency_key: str) -> Delivery:
        """POSTs ``payload``; returns the :class:`Delivery` or raises :class:`WebhookError`."""
        if self._session is None:
            raise ConnectorError("WebhookClient.post before open(): use `with WebhookClient(url) as client:`")
        body = json.dumps(payload, ensure_ascii=False, allow_nan=False, default=str).encode("utf-8")
        headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key}
        try:
            response = self._session.post(self.url, data=body, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise WebhookError(
                "webhook_unreachable", f"POST {self.url}: no answer after {self.retries} retries: {exc}"
            ) from exc
        history = getattr(getattr(response.raw, "retries", None), "history", ()) or ()
        attempts = len(history) + 1
        if response.ok:
            return Delivery(response.status_code, attempts)
        reason = "webhook_failed" if response.status_code in RETRY_STATUSES else "webhook_rejected"
        raise WebhookError(
            reason,
            f"POST {self.url}: HTTP {response.status_code} after {attempts} attempt(s): {response.text[:200]!r}",
            response.status_code,
        )


class _PostFn(beam.DoFn):
    def __init__(self, client: WebhookClient, id_field: str, stage: str):
        self._client = client
        self._id_field = id_field
        self._stage = stage

    def setup(self):
        self._client.open()
        self._dead = DeadLetterCounter()
        self._in = counter("records_in")
        self._out = counter("records_out")
        self._retries = counter("webhook_retries")
        self._lag = EventTimeLag()

    def process(self, record, timestamp=beam.DoFn.TimestampParam):
        self._in.inc()
        self._lag.observe(timestamp)
        try:
            delivery = self._client.post(to_plain(record), str(getattr(record, self._id_field)))
        except WebhookError as exc:
            yield self._dead.dead_letter(self._stage, exc.reason, str(exc), record)
        else:
            self._retries.inc(delivery.attempts - 1)
            self._out.inc()
            yield record

    def teardown(self):
        self._client.close()


class PostAlerts(beam.PTransform):
    """POSTs each alert as JSON to a webhook (see the module docstring).

    Works on any schema'd records with an id field (``Alert`` by default);
    bounded or unbounded alike. The client is created on the worker.

    Args:
      url: the webhook, ``http(s)://...``.
      id_field: the field sent as the ``Idempotency-Key`` header.
      timeout, retries, backoff, max_backoff, headers: see :class:`WebhookClient`.

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
    ):
        super().__init__()
        self._client = WebhookClient(url, timeout, retries, backoff, max_backoff, headers)
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
                    settings[_URI_PARAMS[name]] = int(value) if name == "webhook_retries" else float(value)
                except ValueError:
                    raise InvalidUriError(f"{uri!r}: {name}={value!r} must be a number") from None
        kept = urllib.parse.urlencode([(k, v) for k, v in query if k not in _URI_PARAMS])
        return cls(urllib.parse.urlunsplit(parts._replace(query=kept)), **settings)

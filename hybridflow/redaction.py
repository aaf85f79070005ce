"""What hybridflow never prints or stores: the secrets inside endpoint URIs,
and the values of a record's sensitive fields outside the pipeline's outputs.

Sensitive fields (:class:`FieldRedactor`, end of this module): a record type
names its personal-data fields in a class attribute ``sensitive``
(:func:`hybridflow.schemas.sensitive_fields`); every dead letter is made by
:func:`hybridflow.transforms.dead_letters.make_dead_letter`, which masks those
fields' values in its ``payload`` and ``message`` unless the user keeps them.

:func:`redact` is the one helper every message, summary, metrics file, log
line, dead letter and launch record goes through before a URI reaches it.
In any text it rewrites each ``scheme://...`` URL:

- a password in the user info: ``postgresql://etl:***@db:5432/shop``;
- the value of a query parameter whose name says it is secret
  (``password``, ``token``, ``secret``, ``api_key``, ``signature`` ...):
  ``?token=***``; the secret *references* hybridflow reads
  (``password_env=NAME``, ``password_secret=projects/...``) are names, not
  secrets, and stay;
- for ``http(s)://`` and ``webhook+http(s)://`` URLs, everything after the
  host: webhook services put their token in the path
  (``https://hooks.slack.com/services/T000/B000/XXXX``) or the query, so
  only ``https://hooks.slack.com/***`` is shown.

``redact(text, *uris)`` also replaces the secret parts of the given URIs
wherever they appear on their own, e.g. the path of a webhook URL in an
HTTP library's exception (``... with url: /services/T000/B000/XXXX``).

>>> redact("postgresql://etl:hunter2@db:5432/shop?table=orders")
'postgresql://etl:***@db:5432/shop?table=orders'
>>> redact("POST https://hooks.slack.com/services/T000/B000/XXXX: HTTP 500")
'POST https://hooks.slack.com/***: HTTP 500'
>>> redact("GET /services/T000/B000/XXXX failed", "https://hooks.slack.com/services/T000/B000/XXXX")
'GET /*** failed'
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import logging
import re
import urllib.parse
from typing import Any, Optional, Sequence

from hybridflow.errors import InvalidOptionError

__all__ = [
    "redact", "secret_parts", "has_password", "refuse_passwords", "RedactingFilter", "redact_logs", "MASK",
    "REFERENCE_PARAMS", "FieldRedactor", "SENSITIVE_MASK",
]

MASK = "***"
# secret parts shorter than this are not searched for on their own (they would
# match ordinary text); inside a URL they are always redacted
_MIN_PART = 4
#: query parameters that name where a secret is, not the secret itself
REFERENCE_PARAMS = frozenset({"password_env", "password_secret"})
_SECRET_NAME = re.compile(
    r"pass(word|wd|phrase)?|pwd|secret|token|api[-_]?key|apikey|access[-_]?key|private[-_]?key|"
    r"client[-_]?key|signature|^sig$|credential|^auth|session|^sas$|^code$",
    re.I,
)
_HTTP_SCHEMES = ("http", "https", "webhook+http", "webhook+https")
# a URL in free text: scheme://, then anything up to white space, a quote or the next scheme://
_URL = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>(?:(?![A-Za-z][A-Za-z0-9+.-]*://)[^\s'\"<>`])*)"
)
_QUERY_PARAM = re.compile(r"(?P<sep>[?&;])(?P<name>[^=&;#\s]+)=(?P<value>[^&;#\s]*)")


def _is_secret_name(name: str) -> bool:
    return name not in REFERENCE_PARAMS and bool(_SECRET_NAME.search(name))


def _split(rest: str) -> tuple[str, str, str]:
    """(user info, host[:port], the rest) of what follows ``scheme://``. The user
    info ends at the last ``@`` before the query, so a password holding ``/``
    (which a URL should escape, but people write) is still found."""
    at = rest.rfind("@", 0, _first(rest, "?#"))
    userinfo, hostpart = (rest[:at], rest[at + 1:]) if at >= 0 else ("", rest)
    end = _first(hostpart, "/?#")
    return userinfo, hostpart[:end], hostpart[end:]


def _first(text: str, chars: str) -> int:
    """Index of the first of ``chars`` in ``text`` (its length if none)."""
    positions = [i for i in map(text.find, chars) if i >= 0]
    return min(positions) if positions else len(text)


def _redact_url(scheme: str, rest: str) -> str:
    userinfo, host, tail = _split(rest)
    if ":" in userinfo:
        userinfo = f"{userinfo.split(':', 1)[0]}:{MASK}"
    authority = f"{userinfo}@{host}" if userinfo else host
    if scheme.lower() in _HTTP_SCHEMES:
        return f"{scheme}://{authority}" + (f"/{MASK}" if tail not in ("", "/") else tail)

    def param(match: re.Match) -> str:
        if _is_secret_name(urllib.parse.unquote_plus(match["name"])) and match["value"]:
            return f"{match['sep']}{match['name']}={MASK}"
        return match.group(0)

    return f"{scheme}://{authority}{_QUERY_PARAM.sub(param, tail)}"


def secret_parts(uri: str) -> list[str]:
    """The secret substrings of ``uri`` (password, secret parameter values,
    an http(s) URL's path and query), longest first, each also URL-decoded;
    parts shorter than 4 characters are left out."""
    match = _URL.search(uri or "")
    if not match:
        return []
    scheme, rest = match["scheme"], match["rest"]
    userinfo, _, tail = _split(rest)
    parts = []
    if ":" in userinfo:
        parts.append(userinfo.split(":", 1)[1])
    if scheme.lower() in _HTTP_SCHEMES:
        if tail not in ("", "/"):
            parts.append(tail)
            path = tail.split("?", 1)[0].split("#", 1)[0]
            if path not in ("", "/"):
                parts.append(path)
            parts += [m["value"] for m in _QUERY_PARAM.finditer(tail) if not m["name"].startswith("webhook_")]
    else:
        parts += [m["value"] for m in _QUERY_PARAM.finditer(tail) if _is_secret_name(m["name"]) and m["value"]]
    found = {p for part in parts for p in (part, urllib.parse.unquote(part)) if len(p) >= _MIN_PART}
    return sorted(found, key=len, reverse=True)


def redact(text: str, *uris: str) -> str:
    """``text`` with the secrets of every URL in it replaced by ``***`` (see
    the module docstring); the secret parts of ``uris`` are replaced wherever
    they appear."""
    if not text:
        return text
    text = str(text)
    for part in (p for uri in uris for p in secret_parts(uri)):
        text = text.replace(part, f"/{MASK}" if part.startswith("/") else MASK)
    return _URL.sub(_redact_match, text)


def _redact_match(match: re.Match) -> str:
    rest = match["rest"]
    body = rest.rstrip(".,:;!?)]}")  # punctuation after a URL in a sentence
    return _redact_url(match["scheme"], body) + rest[len(body):]


def has_password(text: str) -> bool:
    """Whether a URL in ``text`` carries a secret inline: a password in its user
    info or, but for http(s) URLs, a secret-named query parameter (not a
    ``password_env=`` / ``password_secret=`` reference)."""
    for match in _URL.finditer(text or ""):
        if ":" in _split(match["rest"])[0]:
            return True
        if match["scheme"].lower() not in _HTTP_SCHEMES and _redact_match(match) != match.group(0):
            return True
    return False


def refuse_passwords(args: Sequence[str], where: str) -> None:
    """Raises InvalidOptionError for an argument holding a URI with an inline
    password: command lines and template parameters are not secret."""
    for arg in args:
        if has_password(arg):
            raise InvalidOptionError(
                f"{where}: {redact(arg)} holds a password or token, which would be visible on the command line "
                "(ps) and in the launched job's parameters; give it by reference: "
                "?password_env=NAME (an environment variable where the connection is opened) or "
                "?password_secret=projects/P/secrets/S (Secret Manager), see docs/security.md"
            )


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's message (and, given
    ``uris``, their secret parts wherever they appear)."""

    def __init__(self, *uris: str):
        super().__init__()
        self._uris = uris

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a message that cannot be formatted: the handler reports it
            return True
        cleaned = redact(message, *self._uris)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info), *self._uris)
        return True


def redact_logs() -> None:
    """Adds a :class:`RedactingFilter` to every handler of the root logger (once)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


# --------------------------------------------------------------------------
# Sensitive record fields

#: what the value of a sensitive field becomes in a dead letter or a message
SENSITIVE_MASK = "[redacted]"
# a JSON member "name": value, the value a string (possibly cut short), a number or a literal
_JSON_MEMBER = r'("{name}"\s*:\s*)("(?:[^"\\]|\\.)*(?:"|$)|-?[0-9][0-9.eE+-]*|true|false|null)'


@dataclasses.dataclass(frozen=True)
class FieldRedactor:
    """Masks the values of a record type's sensitive fields in the text a
    stage writes about a record it could not process (a dead letter's
    ``payload`` and ``message``).

    A payload is masked field by field where its shape is known: a record,
    a dict, a JSON object (also cut short: each ``"field": value`` member is
    masked), a CSV line of ``columns``. Text of no known shape is replaced
    whole by a note of its length, since it may hold the fields anywhere.
    Values found in the payload are masked in the message too.

    Args:
      fields: the sensitive field names (:func:`hybridflow.schemas.sensitive_fields`).
      columns: the CSV column order, for CSV payloads.
      keep: the user's opt-in: mask nothing.

    >>> r = FieldRedactor(("name",))
    >>> r.payload('{"id": "p1", "name": "Ada Lovelace"}')
    '{"id": "p1", "name": "[redacted]"}'
    >>> r.message("field 'name': 'Ada Lovelace' is too long", '{"id": "p1", "name": "Ada Lovelace"}')
    "field 'name': [redacted] is too long"
    """

    fields: tuple = ()
    columns: tuple = ()
    keep: bool = False

    @classmethod
    def of(cls, record_type: Any, columns: Optional[Sequence[str]] = None, keep: bool = False) -> "FieldRedactor":
        """The redactor of ``record_type``'s ``sensitive`` fields."""
        from hybridflow.schemas import sensitive_fields

        return cls(sensitive_fields(record_type), tuple(columns or ()), keep)

    @property
    def active(self) -> bool:
        return bool(self.fields) and not self.keep

    def _members(self) -> list:
        return [re.compile(_JSON_MEMBER.format(name=re.escape(n))) for n in self.fields]

    def _mapping(self, element: Any) -> Optional[dict]:
        """The element as a dict of its fields, when it has that shape."""
        if isinstance(element, dict):
            return element
        if hasattr(element, "_asdict"):
            return element._asdict()
        if isinstance(element, bytes):
            element = element.decode("utf-8", "backslashreplace")
        if isinstance(element, str):
            text = element.strip().removeprefix("\ufeff")
            if text.startswith("{"):
                try:
                    data = json.loads(text)
                except (ValueError, RecursionError):
                    return None
                return data if isinstance(data, dict) else None
            if self.columns:
                try:
                    rows = list(csv.reader([element]))
                except csv.Error:
                    return None
                if rows and len(rows[0]) == len(self.columns):
                    return dict(zip(self.columns, rows[0]))
        return None

    def values(self, element: Any) -> list:
        """The values of the sensitive fields found in ``element``."""
        element = _unwrapped(element)
        found = []
        data = self._mapping(element)
        if data is not None:
            found = [data[n] for n in self.fields if data.get(n) not in (None, "")]
        else:
            text = _text(element)
            for member in self._members():
                for match in member.finditer(text):
                    value = match.group(2)
                    found.append(value.strip('"') if value.startswith('"') else value)
        return found

    def payload(self, element: Any) -> str:
        """``element`` as a dead letter's payload text, its sensitive values masked."""
        from hybridflow.transforms.dead_letters import payload_text

        text = payload_text(element)
        if not self.active:
            return text
        inner = _unwrapped(element)
        data = self._mapping(inner)
        if data is not None and not isinstance(inner, (str, bytes)):
            return payload_text({k: (SENSITIVE_MASK if k in self.fields and v is not None else v)
                                 for k, v in data.items()})
        if data is not None and text.lstrip().startswith("{"):
            return json.dumps({k: (SENSITIVE_MASK if k in self.fields and v is not None else v)
                               for k, v in data.items()}, ensure_ascii=False)
        if data is not None:  # a CSV line of the columns
            buffer = _Line()
            csv.writer(buffer, lineterminator="").writerow(
                [SENSITIVE_MASK if c in self.fields and data[c] != "" else data[c] for c in self.columns])
            return buffer.text
        if text.lstrip().startswith("{"):  # JSON cut short or broken: mask member by member
            for member in self._members():
                text = member.sub(lambda m: m.group(1) + '"' + SENSITIVE_MASK + '"', text)
            return text
        return (f"{SENSITIVE_MASK} ({len(text)} characters of unknown shape that may hold the sensitive fields "
                f"{', '.join(self.fields)}; keep_sensitive=True keeps them)")

    def message(self, message: str, element: Any) -> str:
        """``message`` about ``element`` with the element's sensitive values masked."""
        if not self.active:
            return message
        for value in sorted(self.values(element), key=lambda v: -len(str(v))):
            for form in (repr(value), json.dumps(value, ensure_ascii=False, default=str), str(value)):
                if len(form) >= 3:
                    message = message.replace(form, SENSITIVE_MASK)
        return message


class _Line:
    """A file-like sink for one CSV line."""

    def __init__(self):
        self.text = ""

    def write(self, chunk: str) -> None:
        self.text += chunk


def _unwrapped(element: Any) -> Any:
    """The raw payload of an ``Unreadable`` (a reader's failure), else the element."""
    from hybridflow.transforms.dead_letters import Unreadable

    return element.payload if isinstance(element, Unreadable) else element


def _text(element: Any) -> str:
    if isinstance(element, bytes):
        return element.decode("utf-8", "backslashreplace")
    return element if isinstance(element, str) else str(element)


@functools.lru_cache(maxsize=256)
def redactor_of(record_type: type) -> FieldRedactor:
    """The (cached) redactor of a record type's sensitive fields, for records
    whose type is their own (what a stage after parsing sees)."""
    return FieldRedactor.of(record_type)

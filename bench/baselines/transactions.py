"""Reading and validating transactions in the baselines: plain Python and Beam,
the same rules as hybridflow's ``Transaction`` (required fields, amount
0..1e6 and finite, currency and country codes, ids without spaces, an
ISO-8601 or epoch event time)."""

import argparse
import datetime
import json
import math
import re

import apache_beam as beam
from apache_beam.io.parquetio import ReadFromParquet

TEXT_FIELDS = ("txn_id", "card_id", "customer_id", "merchant_id", "category", "currency", "country")
PATTERNS = {
    "txn_id": re.compile(r"\S{1,128}"),
    "card_id": re.compile(r"\S{1,64}"),
    "currency": re.compile(r"[A-Z]{3}"),
    "country": re.compile(r"[A-Z]{2}"),
}
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def event_seconds(value):
    if isinstance(value, datetime.datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
    else:
        text = str(value).strip()
        try:
            return float(text)
        except ValueError:
            pass
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        dt = datetime.datetime.fromisoformat(text)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=datetime.timezone.utc)
    return (dt - EPOCH) // datetime.timedelta(microseconds=1) / 1e6


def to_transaction(data):
    """A dict of valid, typed fields, or None."""
    if not isinstance(data, dict):
        return None
    txn = {}
    for name in TEXT_FIELDS:
        value = data.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            return None
        pattern = PATTERNS.get(name)
        if pattern is not None and not pattern.fullmatch(value):
            return None
        txn[name] = value
    amount = data.get("amount")
    try:
        if isinstance(amount, bool) or amount is None:
            return None
        amount = float(amount.strip() if isinstance(amount, str) else amount)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(amount) or not 0.0 <= amount <= 1_000_000.0:
        return None
    txn["amount"] = amount
    try:
        txn["event_time"] = event_seconds(data.get("event_time"))
    except (TypeError, ValueError, OverflowError):
        return None
    return txn


def parse_line(line):
    try:
        txn = to_transaction(json.loads(line)) if line.strip() else None
    except ValueError:
        txn = None
    return [txn] if txn is not None else []


def read_transactions(p, path: str):
    """Valid transactions (dicts) from JSON-lines or Parquet files."""
    if path.endswith(".parquet"):
        return p | "Read" >> ReadFromParquet(path) | "Validate" >> beam.FlatMap(
            lambda d: [t for t in [to_transaction(d)] if t is not None]
        )
    return p | "Read" >> beam.io.ReadFromText(path) | "Parse" >> beam.FlatMap(parse_line)


def arguments(argv=None, beam_flags: bool = True):
    """(--input, --output) and the remaining (Beam) flags."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    return parser.parse_known_args(argv) if beam_flags else (parser.parse_args(argv), [])

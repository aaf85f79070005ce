"""Sensitive record fields (``sensitive = (...)`` on a record type): their
values are masked in dead letters made anywhere, and kept on request."""

import json
import typing

import apache_beam as beam
import pytest
from apache_beam.utils.timestamp import Timestamp

from hybridflow import ParseRecords
from hybridflow.errors import SchemaError
from hybridflow.redaction import SENSITIVE_MASK, FieldRedactor
from hybridflow.schemas import register, sensitive_fields
from hybridflow.testing import Collect, batch_pipeline, collected
from hybridflow.transforms.dead_letters import Unreadable, make_dead_letter


@register
class Person(typing.NamedTuple):
    person_id: str
    name: str
    ssn: str
    age: int
    event_time: Timestamp

    sensitive = ("name", "ssn")
    constraints = {}


GOOD = {"person_id": "p1", "name": "Ada Lovelace", "ssn": "123-45-6789", "age": 36,
        "event_time": "2026-01-01T00:00:00Z"}
SECRETS = ("Ada Lovelace", "123-45-6789")


def line(**changes):
    return json.dumps({**GOOD, **changes})


def test_sensitive_fields_are_checked_when_the_type_is_registered():
    assert sensitive_fields(Person) == ("name", "ssn")
    assert sensitive_fields(str) == ()

    class Typo(typing.NamedTuple):
        name: str
        sensitive = ("nmae",)

    with pytest.raises(SchemaError, match=r"Typo.sensitive names \['nmae'\], not fields of Typo \(name\)"):
        register(Typo)

    class Text(typing.NamedTuple):
        name: str
        sensitive = "name"

    with pytest.raises(SchemaError, match=r"use a tuple of field names"):
        register(Text)


@pytest.mark.parametrize("payload, expected", [
    # a JSON object: each sensitive member masked, the rest as it was
    (line(), json.dumps({**GOOD, "name": SENSITIVE_MASK, "ssn": SENSITIVE_MASK})),
    # JSON cut short: member by member, also a string cut in the middle
    (line()[:40], '{"person_id": "p1", "name": "[redacted]"'),
    ('{"person_id": "p1", "ssn": "123-45', '{"person_id": "p1", "ssn": "[redacted]"'),
    # a dict and a record
    (dict(GOOD), json.dumps({**GOOD, "name": SENSITIVE_MASK, "ssn": SENSITIVE_MASK})),
    # a reader's failure: its raw payload
    (Unreadable("invalid_csv", "bad", line()), json.dumps({**GOOD, "name": SENSITIVE_MASK, "ssn": SENSITIVE_MASK})),
])
def test_payloads_are_masked_field_by_field(payload, expected):
    assert FieldRedactor(("name", "ssn")).payload(payload) == expected


def test_csv_lines_are_masked_by_column_and_text_of_unknown_shape_whole():
    redactor = FieldRedactor(("name", "ssn"), columns=("person_id", "name", "ssn", "age", "event_time"))
    assert redactor.payload('p1,"Lovelace, Ada",123-45-6789,36,2026-01-01T00:00:00Z') == \
        "p1,[redacted],[redacted],36,2026-01-01T00:00:00Z"
    masked = redactor.payload("p1,Ada Lovelace,123-45-6789")  # a column missing: no known shape
    assert not any(s in masked for s in SECRETS)
    assert masked.startswith("[redacted] (27 characters of unknown shape") and "name, ssn" in masked
    assert not any(s in FieldRedactor(("name",)).payload(b"\x00Ada Lovelace") for s in SECRETS)


def test_messages_lose_the_values_and_keep_saying_what_is_wrong():
    redactor = FieldRedactor(("name", "ssn"))
    bad = line(ssn="12345")
    assert redactor.message("field 'ssn': '12345' does not match '\\\\d{3}-\\\\d{2}-\\\\d{4}'", bad) == \
        "field 'ssn': [redacted] does not match '\\\\d{3}-\\\\d{2}-\\\\d{4}'"
    assert FieldRedactor(("name",), keep=True).payload(line()) == line()


def test_a_dead_letter_of_a_record_masks_its_own_types_fields_wherever_it_is_made():
    record = Person("p1", "Ada Lovelace", "123-45-6789", 36, Timestamp.of(0))
    dead = make_dead_letter("Enrich", "missing_key", "no reference row for 'p1' (Ada Lovelace)", record)
    assert not any(s in dead.payload + dead.message for s in SECRETS)
    assert json.loads(dead.payload)["person_id"] == "p1" and dead.message.endswith("([redacted])")


@pytest.mark.parametrize("keep", [False, True])
def test_parse_records_masks_dead_letters_unless_kept(tmp_path, keep):
    lines = [line(), line(ssn="12345"), line(age="old"), line()[:50], "Ada Lovelace, 123-45-6789"]
    with batch_pipeline() as p:
        parsed = p | beam.Create(lines) | ParseRecords(Person, constraints={
            "ssn": __import__("hybridflow").Pattern(r"\d{3}-\d{2}-\d{4}")}, keep_sensitive=keep)
        parsed.dead_letters | Collect(tmp_path / "dead")
    dead = sorted(collected(tmp_path / "dead"), key=lambda d: d.error_type)
    assert [d.error_type for d in dead] == ["invalid_json", "invalid_json", "invalid_type", "invalid_value"]
    text = " ".join(d.payload + " " + d.message for d in dead)
    if keep:
        assert sorted(d.payload for d in dead) == sorted(lines[1:])
        assert "'12345' does not match" in text
    else:
        assert not any(s in text for s in SECRETS + ("12345",))
        assert "field 'ssn': [redacted] does not match" in text
        assert json.loads(dead[2].payload)["age"] == "old"  # what is not sensitive stays


def test_security_doc_example(tmp_path, capsys):
    """docs/security.md's sensitive-fields example, and what it says it prints."""
    from tests._docs import example, printed

    namespace = {"__name__": "sensitive_doc"}
    exec(compile(example("security.md", "sensitive-fields", "python"), "docs/security.md", "exec"), namespace)
    namespace["run"](str(tmp_path))
    assert capsys.readouterr().out == printed("security.md", "sensitive-fields")


def test_a_row_bigquery_rejects_is_masked_by_the_written_record_type():
    from hybridflow.io.bigquery import _RejectedRow

    fn = _RejectedRow("WriteToBigQuery", FieldRedactor.of(Person))
    fn.setup()
    row = {**GOOD, "age": "not a number"}
    (dead,) = fn.process(("p:d.t", row, [{"reason": "invalid", "message": "age: not a number"}]))
    assert dead.error_type == "bigquery_rejected" and not any(s in dead.payload + dead.message for s in SECRETS)
    assert json.loads(dead.payload)["age"] == "not a number"


@pytest.mark.parametrize("suffix", ["jsonl", "parquet"])
def test_the_columnar_parse_masks_the_rows_it_sends_to_dead_letters(tmp_path, suffix):
    """Bounded files read as Arrow tables: the rows the vectorized parse
    cannot vouch for go through the same per-record parse, masked the same."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hybridflow.io import ReadFrom

    rows = [dict(GOOD), {**GOOD, "ssn": "12345", "person_id": "p2"}, {**GOOD, "age": -1, "person_id": "p3"}]
    path = tmp_path / f"people.{suffix}"
    if suffix == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows) + line()[:30] + "\n")
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    constraints = {"ssn": __import__("hybridflow").Pattern(r"\d{3}-\d{2}-\d{4}"),
                   "age": __import__("hybridflow").Range(min=0)}
    with batch_pipeline() as p:
        parsed = p | ReadFrom(str(path), columnar=True) | ParseRecords(Person, constraints=constraints)
        parsed.dead_letters | Collect(tmp_path / "dead")
    dead = collected(tmp_path / "dead")
    assert len(dead) == (3 if suffix == "jsonl" else 2)
    assert not any(s in d.payload + d.message for d in dead for s in SECRETS + ("12345",))
    assert {json.loads(d.payload)["person_id"] for d in dead if d.error_type != "invalid_json"} == {"p2", "p3"}

import pytest

from hybridflow import InvalidUriError
from hybridflow.io.uri import file_format, parse_uri


def test_local_paths_and_globs():
    e = parse_uri("data/part-?.jsonl")
    assert (e.scheme, e.location, dict(e.params)) == ("file", "data/part-?.jsonl", {})
    assert file_format(e) == "jsonl"


def test_query_parameters():
    e = parse_uri("gs://bucket/out/alerts?format=parquet&shards=2")
    assert (e.scheme, e.netloc, e.location) == ("gs", "bucket", "gs://bucket/out/alerts")
    assert dict(e.params) == {"format": "parquet", "shards": "2"}
    assert file_format(e) == "parquet"
    assert e.is_file


def test_other_schemes():
    e = parse_uri("kafka://127.0.0.1:9092/transactions")
    assert (e.scheme, e.netloc, e.path) == ("kafka", "127.0.0.1:9092", "transactions")
    assert not e.is_file


@pytest.mark.parametrize("bad, message", [
    ("", r"^empty endpoint URI '': give a path or scheme://"),
    ("   ", r"^empty endpoint URI '   ': give a path or scheme://"),
    ("kafka://", r"^'kafka://': nothing after kafka://; see docs/connectors.md for URI forms"),
    ("out/file.txt", r"^'out/file.txt': cannot tell the file format; end the path with one of .avro, .csv, "
                     r".*or add \?format=<jsonl\|csv\|avro\|parquet\|orc\|ecs>"),
    ("out/x?format=xml", r"^'out/x\?format=xml': unknown format 'xml'; use one of jsonl, csv, avro, parquet"),
])
def test_bad_uris_name_the_fix(bad, message):
    with pytest.raises(InvalidUriError, match=message):
        file_format(parse_uri(bad))


def test_compressed_extension():
    assert file_format(parse_uri("h/*.jsonl.gz")) == "jsonl"

"""Inputs never silently read nothing or part: a pattern that matches no file
is an error when the pipeline is built (unless allowed), and a compressed file
cut short fails the job naming the file, on both read paths (per record and
columnar); complete and concatenated compressed files read whole."""

import bz2
import gzip
import uuid

import pytest

from hybridflow import ParseRecords, ReadFrom, Transaction
from hybridflow.errors import InvalidLocationError, JobFailedError
from hybridflow.io.synthetic import generate_records
from hybridflow.pipelines.fraud import SyntheticTransactions
from hybridflow.pipelines.run import job_failure
from hybridflow.testing import Collect, batch_pipeline, collected

LINES = list(generate_records(SyntheticTransactions(seed=11, cards=30, malformed=0.0), 0, 2000))
DATA = ("\n".join(LINES) + "\n").encode()


def read_count(pattern, tmp_path, columnar, *flags):
    """Runs ReadFrom(pattern) -> ParseRecords on FnApiRunner; returns how many records it parsed."""
    out = tmp_path / f"records-{uuid.uuid4().hex}"
    with batch_pipeline(*flags) as p:
        parsed = p | ReadFrom(pattern, columnar=columnar) | ParseRecords(Transaction)
        parsed.records | Collect(out)
    return len(collected(out))


@pytest.mark.parametrize("pattern", ["missing.jsonl", "none-*.jsonl", "missing-dir/*.jsonl"])
def test_a_pattern_matching_no_file_is_an_error_when_the_pipeline_is_built(tmp_path, pattern):
    with pytest.raises(InvalidLocationError) as raised:
        _ = batch_pipeline() | ReadFrom(f"{tmp_path}/{pattern}")
    assert str(raised.value) == (f"no file matches the input '{tmp_path}/{pattern}': check the path, "
                                 "or pass --allow_empty to run on no input")


@pytest.mark.parametrize("columnar", [False, True])
def test_allow_empty_reads_nothing(tmp_path, columnar):
    assert read_count(f"{tmp_path}/none-*.jsonl", tmp_path, columnar, "--allow_empty") == 0
    assert read_count(f"{tmp_path}/none-*.jsonl?allow_empty=true", tmp_path, columnar) == 0


@pytest.mark.parametrize("columnar", [False, True])
@pytest.mark.parametrize("ext, compress, kind", [(".gz", gzip.compress, "gzip"), (".bz2", bz2.compress, "bzip2")])
def test_a_truncated_compressed_file_fails_the_job_naming_it(tmp_path, columnar, ext, compress, kind):
    whole = compress(DATA)
    cut = tmp_path / f"cut.jsonl{ext}"
    cut.write_bytes(whole[: len(whole) * 85 // 100])  # today's silent result: ~1,700 of the 2,000 records
    with pytest.raises(Exception) as raised:  # the runner's exception, with ours inside
        read_count(str(cut), tmp_path, columnar)
    failure = job_failure(raised.value)  # the one line the CLI prints
    assert isinstance(failure, JobFailedError)
    assert str(failure).startswith("the job failed in step 'ReadFrom/ReadFromFiles/")
    assert f": {cut}: the {kind} data ends before its end marker: the file is truncated" in str(failure), failure


@pytest.mark.parametrize("columnar", [False, True])
def test_whole_and_concatenated_compressed_files_read_every_record(tmp_path, columnar):
    (tmp_path / "whole.jsonl.gz").write_bytes(gzip.compress(DATA))
    half = len(DATA) // 2
    cut = DATA.rindex(b"\n", 0, half) + 1
    # `cat a.gz b.gz > c.gz` is a valid gzip file of both
    (tmp_path / "members.jsonl.gz").write_bytes(gzip.compress(DATA[:cut]) + gzip.compress(DATA[cut:]))
    assert read_count(f"{tmp_path}/whole.jsonl.gz", tmp_path, columnar) == len(LINES)
    assert read_count(f"{tmp_path}/members.jsonl.gz", tmp_path, columnar) == len(LINES)

"""Outputs are atomic and reruns never mix: a run writes aside, publishes on
success with a ``_SUCCESS`` marker, refuses a directory holding an earlier run
unless ``--overwrite`` (which replaces it only once the new run succeeded),
and readers read only what a ``_SUCCESS`` lists. Locally, on gs:// (GCS
emulator) and s3:// (moto)."""

import glob
import json
import os

import pyarrow.parquet as pq
import pytest

from hybridflow.errors import InvalidLocationError, TooManyDeadLettersError
from hybridflow.pipelines import get_pipeline
from hybridflow.pipelines.outputs import RUNNING, STAGING_PREFIX, SUCCESS, RunOutputs, published_files, read_success
from hybridflow.pipelines.run import run_pipeline

INPUT = "synthetic://transactions?count=1500&cards=40&fraud=0.03&malformed=0.02&seed=5"
OUTPUTS = ("alerts", "aggregates", "profiles", "dead_letters", "late")


def run_fraud(output, *flags):
    spec = get_pipeline("fraud")
    return run_pipeline(spec, spec.options(["--runner=FnApiRunner", f"--input={INPUT}", f"--output={output}", *flags]))


def rows(path):
    if path.endswith(".parquet"):
        return pq.read_table(path).to_pylist()
    return [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]


def test_a_run_publishes_its_files_then_success_listing_them_with_their_counts(tmp_path):
    out = tmp_path / "out"
    summary = run_fraud(out)
    success = read_success(str(out))
    assert success["run_id"] == summary.run_id and success["state"] == "DONE" and success["pipeline"] == "fraud"
    assert success["counts"]["records_read"] == 1500 and success["start"] < success["end"]
    listed = set()
    for name in OUTPUTS:
        files = published_files(str(out), name)
        listed.update(files)
        records = [r for path in files for r in rows(path)]
        assert success["outputs"][name]["records"] == len(records) == summary.written[name]  # counts = lines
    assert success["counts"]["dead_letters"] == len([r for p in published_files(str(out), "dead_letters")
                                                     for r in rows(p)]) > 0
    on_disk = {str(p) for p in out.iterdir()} - {str(out / SUCCESS)}
    assert on_disk == listed  # nothing else: no staging directory, no Beam temporary files, no _RUNNING
    assert summary.published == [os.path.join(str(out), SUCCESS)]


def test_a_rerun_is_refused_and_overwrite_replaces_the_earlier_run_only_once_it_succeeded(tmp_path):
    out = tmp_path / "out"
    first = run_fraud(out)
    earlier = sorted(os.listdir(out))
    with pytest.raises(InvalidLocationError, match=r"holds an earlier run .*pass --overwrite"):
        run_fraud(out)
    assert sorted(os.listdir(out)) == earlier and read_success(str(out))["run_id"] == first.run_id

    # an --overwrite run that fails (every record a dead letter) leaves the earlier run as it was
    bad = tmp_path / "bad.jsonl"
    bad.write_text("a,b,c\n1,2,3\n")  # CSV named .jsonl
    spec = get_pipeline("fraud")
    with pytest.raises(TooManyDeadLettersError, match=r"2 of 2 records read \(100%\) became dead letters"):
        run_pipeline(spec, spec.options(["--runner=FnApiRunner", f"--input={bad}", f"--output={out}", "--overwrite"]))
    assert sorted(os.listdir(out)) == earlier and read_success(str(out))["run_id"] == first.run_id

    # a successful one replaces it: Parquet outputs now, and none of the earlier JSON-lines files left
    second = run_fraud(out, "--overwrite", "--output_format=parquet")
    success = read_success(str(out))
    assert success["run_id"] == second.run_id != first.run_id
    assert not glob.glob(f"{out}/alerts*.jsonl") and glob.glob(f"{out}/alerts*.parquet")
    on_disk = {str(p) for p in out.iterdir()} - {str(out / SUCCESS)}
    assert on_disk == {p for name in OUTPUTS for p in published_files(str(out), name)}


def test_readers_read_only_the_files_the_success_lists(tmp_path):
    from hybridflow.monitoring.report import read_output

    out = tmp_path / "out"
    run_fraud(out)
    published = read_output(str(out), "alerts")
    stray = out / "alerts-00007-of-00009.jsonl"  # e.g. a file an earlier tool left that matches the glob
    stray.write_text(json.dumps({"alert_id": "stray", "event_time": "2026-01-01T00:00:00Z"}) + "\n")
    assert read_output(str(out), "alerts") == published and str(stray) not in published_files(str(out), "alerts")
    (out / SUCCESS).unlink()
    with pytest.raises(InvalidLocationError, match=rf"holds no published run \(no readable {SUCCESS}\)"):
        read_output(str(out), "alerts")


def test_unbounded_outputs_are_published_as_written_and_success_at_the_end(tmp_path):
    """RunOutputs in a streaming run: an unbounded output is written in place
    (Beam finalises each file) and a bounded one (the profiles) is staged; a
    _RUNNING marker while the job runs; at the end the bounded files move in
    and _SUCCESS lists both; --overwrite removes the earlier run before the job
    starts; an interrupted run removes its marker, staging and temporary files."""
    out = tmp_path / "out"
    run = RunOutputs()
    uri = f"{out}/alerts.jsonl"
    assert run.stage("alerts", "WriteAlerts", uri, bounded=False) == uri  # written in place
    run.locate("WriteAlerts", f"{out}/alerts-*.jsonl")  # as the applied sink says
    staged = run.stage("profiles", "WriteProfiles", f"{out}/profiles.parquet", bounded=True)
    assert staged == f"{out}/{STAGING_PREFIX}{run.run_id}/profiles.parquet"
    assert run.locate("WriteProfiles", f"{out}/{STAGING_PREFIX}{run.run_id}/profiles-*.parquet") == (
        f"{out}/profiles-*.parquet")
    run.prepare()
    assert (out / RUNNING).exists()
    window_file = "alerts-20260101T000000-20260101T000100-00000-of-00001.jsonl"
    (out / window_file).write_text('{"a": 1}\n')  # as Beam's windowed write leaves it
    (out / f"{STAGING_PREFIX}{run.run_id}" / "profiles-00000-of-00001.parquet").write_bytes(b"PAR1")
    run.publish({"pipeline": "p"}, {"WriteAlerts": 1, "WriteProfiles": 1})
    success = read_success(str(out))
    assert success["outputs"]["alerts"]["files"] == [window_file]
    assert success["outputs"]["profiles"]["files"] == ["profiles-00000-of-00001.parquet"]
    assert sorted(os.listdir(out)) == sorted([SUCCESS, window_file, "profiles-00000-of-00001.parquet"])

    refused = RunOutputs()
    refused.stage("alerts", "WriteAlerts", uri, bounded=False)
    refused.locate("WriteAlerts", f"{out}/alerts-*.jsonl")
    with pytest.raises(InvalidLocationError, match="holds an earlier run"):
        refused.prepare()
    again = RunOutputs(overwrite=True)
    again.stage("alerts", "WriteAlerts", uri, bounded=False)
    again.locate("WriteAlerts", f"{out}/alerts-*.jsonl")
    again.prepare()  # the earlier run is gone before the job starts: its files are not this run's
    assert sorted(os.listdir(out)) == [RUNNING]  # profiles included: _SUCCESS listed them
    # an interrupted streaming run: a finalised window file stays, the sinks' temporary files go
    (out / window_file).write_text('{"a": 1}\n')
    for temporary in ("beam-temp-alerts-1a2b/3c4d.alerts.jsonl", ".temp5e6f/x", ".tmp-7a8b-alerts-w.jsonl",
                      "dt=2026-01-01/hour=00/.tmp-9c0d-alerts.jsonl"):
        (out / temporary).parent.mkdir(parents=True, exist_ok=True)
        (out / temporary).write_text("partial")
    again.abort()
    left = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert left == [window_file] and not (out / "beam-temp-alerts-1a2b").exists()


def _objects(service, bucket):
    if hasattr(service, "list_objects_v2"):
        return sorted(o["Key"] for o in service.list_objects_v2(Bucket=bucket).get("Contents", []))
    return sorted(b.name for b in service.list_blobs(bucket))


@pytest.mark.services
@pytest.mark.parametrize("scheme", ["gs", "s3"])
def test_object_stores_publish_atomically_too(request, tmp_path, scheme):
    if scheme == "gs":
        bucket, flags = request.getfixturevalue("gcs_bucket"), []
        store = request.getfixturevalue("gcs_emulator").client()
    else:
        server = request.getfixturevalue("s3_server")
        bucket, flags, store = request.getfixturevalue("s3_bucket"), server.pipeline_flags, server.client()
    out = f"{scheme}://{bucket}/runs/fraud"
    first = run_fraud(out, *flags)
    success = read_success(out)
    assert success["run_id"] == first.run_id
    listed = {p for name in OUTPUTS for p in published_files(out, name)}
    objects = _objects(store, bucket)
    assert {f"{scheme}://{bucket}/{name}" for name in objects} == listed | {f"{out}/{SUCCESS}"}  # no staging left
    for name in ("alerts", "dead_letters"):
        records = [r for path in published_files(out, name) for r in _remote_rows(path)]
        assert len(records) == success["outputs"][name]["records"] == first.written[name]
    with pytest.raises(InvalidLocationError, match="holds an earlier run"):
        run_fraud(out, *flags)
    second = run_fraud(out, "--overwrite", *flags)
    assert read_success(out)["run_id"] == second.run_id
    assert {f"{scheme}://{bucket}/{n}" for n in _objects(store, bucket)} == (
        {p for name in OUTPUTS for p in published_files(out, name)} | {f"{out}/{SUCCESS}"})


def _remote_rows(path):
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path) as f:
        return [json.loads(line) for line in f.read().decode("utf-8").splitlines() if line.strip()]

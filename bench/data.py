"""Benchmark input: N synthetic transactions as JSON lines and as Parquet, made once.

JSON lines are the generator's raw text (about 1 % malformed records, which
every implementation must reject the same way). The Parquet copy holds the
valid records only, typed (what a batch layer keeps), parsed with
hybridflow's per-element parser, so both inputs give the same results.
Files are cached under ``bench/data/n<N>/`` (gitignored).

``timestamps=`` picks the shape of ``event_time`` in the JSON lines
(:data:`SHAPES`): ISO-8601 text (the generator's, the default) or epoch
numbers -- seconds as integers or floats, milliseconds, microseconds -- for
``ParseRecords(..., timestamp_unit=...)``; those go to
``bench/data/n<N>-<shape>/``, JSON lines only::

    python -m bench.data --n 1000000 --timestamps epoch_ms
"""

from __future__ import annotations

import json
import multiprocessing
import pathlib

PARAMS = {"seed": "42", "population": "42", "cards": "2000"}
SHARD_RECORDS = 250_000
#: event_time shape -> (ParseRecords timestamp_unit, epoch micros -> JSON value); None: the generator's ISO text
SHAPES = {
    "iso": None,
    "epoch_s": ("s", lambda micros: micros // 1_000_000),
    "epoch_s_float": ("s", lambda micros: micros / 1e6),
    "epoch_ms": ("ms", lambda micros: micros // 1000),
    "epoch_us": ("us", lambda micros: micros),
}


def timestamp_unit(shape: str) -> str:
    """The ``timestamp_unit`` that reads ``event_time`` of a :data:`SHAPES` shape."""
    return SHAPES[shape][0] if SHAPES[shape] else "s"


def _reshaped(line: str, shape: str) -> str:
    """The generator's line with its event time in ``shape`` (malformed lines as they are)."""
    from hybridflow.schemas import to_timestamp

    try:
        data = json.loads(line)
        micros = to_timestamp(data["event_time"]).micros
    except (ValueError, TypeError, KeyError):
        return line
    data["event_time"] = SHAPES[shape][1](micros)
    return json.dumps(data)


def _write_shard(task):
    path, first, last, shape = task
    from hybridflow.io.synthetic import SyntheticTransactions, generate_transactions

    config = SyntheticTransactions.from_params({**PARAMS, "count": str(last)})
    with open(path, "w", encoding="utf-8") as f:
        for line in generate_transactions(config, first, last):
            f.write((line if SHAPES[shape] is None else _reshaped(line, shape)) + "\n")
    return path


def _parquet_shard(task):
    source, target = task
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hybridflow.errors import RecordError
    from hybridflow.io.files import arrow_schema
    from hybridflow.schemas import Transaction
    from hybridflow.transforms.parse import record_parser

    parse = record_parser(Transaction)
    schema = arrow_schema(Transaction)
    columns = {name: [] for name in schema.names}
    with open(source, encoding="utf-8") as f:
        for line in f:
            try:
                data = json.loads(line)
                record = parse(data) if isinstance(data, dict) else None
            except (ValueError, RecordError):
                record = None
            if record is None:
                continue
            for name in schema.names:
                value = getattr(record, name)
                columns[name].append(value.micros if name == "event_time" else value)
    table = pa.table([pa.array(columns[f.name], f.type) for f in schema], schema=schema)
    pq.write_table(table, target, row_group_size=128 * 1024)
    return target


def ensure_data(n: int, root: str = "bench/data", timestamps: str = "iso") -> dict:
    """Generates (once) and returns the globs of the JSON-lines and Parquet
    inputs (Parquet: ISO shape only, ``None`` otherwise)."""
    if timestamps not in SHAPES:
        raise ValueError(f"timestamps={timestamps!r}: use one of {', '.join(SHAPES)}")
    iso = timestamps == "iso"
    directory = pathlib.Path(root) / (f"n{n}" if iso else f"n{n}-{timestamps}")
    done = directory / ".done"
    jsonl = directory / "jsonl"
    parquet = directory / "parquet"
    if not done.exists():
        jsonl.mkdir(parents=True, exist_ok=True)
        shards = max(1, -(-n // SHARD_RECORDS))
        per = -(-n // shards)
        tasks = [
            (str(jsonl / f"transactions-{i:05d}-of-{shards:05d}.jsonl"), i * per, min((i + 1) * per, n), timestamps)
            for i in range(shards)
        ]
        with multiprocessing.Pool(2) as pool:
            written = pool.map(_write_shard, tasks)
            if iso:
                parquet.mkdir(parents=True, exist_ok=True)
                pool.map(_parquet_shard, [(w, str(parquet / (pathlib.Path(w).stem + ".parquet"))) for w in written])
        done.write_text(json.dumps({"n": n, "params": PARAMS, "timestamps": timestamps}))
    return {"jsonl": str(jsonl / "*.jsonl"), "parquet": str(parquet / "*.parquet") if iso else None,
            "dir": str(directory)}


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Generate (once) the benchmark input; print its paths.")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--timestamps", choices=sorted(SHAPES), default="iso")
    args = parser.parse_args()
    print(json.dumps(ensure_data(args.n, timestamps=args.timestamps)))

"""Benchmark input: N synthetic transactions as JSON lines and as Parquet, made once.

JSON lines are the generator's raw text (about 1 % malformed records, which
every implementation must reject the same way). The Parquet copy holds the
valid records only, typed (what a batch layer keeps), parsed with
hybridflow's per-element parser, so both inputs give the same results.
Files are cached under ``bench/data/n<N>/`` (gitignored).
"""

from __future__ import annotations

import json
import multiprocessing
import pathlib

PARAMS = {"seed": "42", "population": "42", "cards": "2000"}
SHARD_RECORDS = 250_000


def _write_shard(task):
    path, first, last = task
    from hybridflow.io.synthetic import SyntheticTransactions, generate_transactions

    config = SyntheticTransactions.from_params({**PARAMS, "count": str(last)})
    with open(path, "w", encoding="utf-8") as f:
        for line in generate_transactions(config, first, last):
            f.write(line + "\n")
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


def ensure_data(n: int, root: str = "bench/data") -> dict:
    """Generates (once) and returns the globs of the JSON-lines and Parquet inputs."""
    directory = pathlib.Path(root) / f"n{n}"
    done = directory / ".done"
    jsonl = directory / "jsonl"
    parquet = directory / "parquet"
    if not done.exists():
        jsonl.mkdir(parents=True, exist_ok=True)
        parquet.mkdir(parents=True, exist_ok=True)
        shards = max(1, -(-n // SHARD_RECORDS))
        per = -(-n // shards)
        tasks = [
            (str(jsonl / f"transactions-{i:05d}-of-{shards:05d}.jsonl"), i * per, min((i + 1) * per, n))
            for i in range(shards)
        ]
        with multiprocessing.Pool(2) as pool:
            written = pool.map(_write_shard, tasks)
            pool.map(_parquet_shard, [(w, str(parquet / (pathlib.Path(w).stem + ".parquet"))) for w in written])
        done.write_text(json.dumps({"n": n, "params": PARAMS}))
    return {"jsonl": str(jsonl / "*.jsonl"), "parquet": str(parquet / "*.parquet"), "dir": str(directory)}

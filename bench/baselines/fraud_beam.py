"""Benchmark (b), idiomatic Beam: the fraud batch scoring path in plain Beam,
written the way Beam's examples write it: parse -> card profiles
(CombinePerKey) -> enrich (AsDict side input) -> z-score and new-country
rules -> sliding 5 min / 1 min windows per card (WindowInto + CombinePerKey)
-> velocity rule -> one alert per rule, card and 10 minutes -> Parquet.
Same parameters as ``hybridflow run fraud --mode batch`` defaults.

    python -m bench.baselines.fraud_beam --input 'bench/data/n100000/jsonl/*.jsonl' --output /tmp/out
"""

import hashlib
import math

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.parquetio import WriteToParquet
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms.window import GlobalWindows, SlidingWindows, TimestampedValue
from apache_beam.utils.timestamp import Timestamp

from bench.baselines.transactions import arguments, read_transactions

VELOCITY, ZSCORE, MIN_HISTORY, SHARE, MIN_STDDEV = 10, 4.0, 5, 0.1, 1.0
COOLDOWN_US = 600 * 1_000_000


class ProfileFn(beam.CombineFn):
    """count, mean and M2 (Chan et al.), country counts, last event time."""

    def create_accumulator(self):
        return [0, 0.0, 0.0, {}, None]

    def add_input(self, acc, txn):
        acc[0] += 1
        delta = txn["amount"] - acc[1]
        acc[1] += delta / acc[0]
        acc[2] += delta * (txn["amount"] - acc[1])
        acc[3][txn["country"]] = acc[3].get(txn["country"], 0) + 1
        acc[4] = txn["event_us"] if acc[4] is None else max(acc[4], txn["event_us"])
        return acc

    def merge_accumulators(self, accs):
        n, mean, m2, countries, last = 0, 0.0, 0.0, {}, None
        for bn, bmean, bm2, bcountries, blast in accs:
            if bn == 0:
                continue
            total = n + bn
            delta = bmean - mean
            mean += delta * bn / total
            m2 += bm2 + delta * delta * n * bn / total
            n = total
            for c, k in bcountries.items():
                countries[c] = countries.get(c, 0) + k
            last = blast if last is None else max(last, blast)
        return [n, mean, m2, countries, last]

    def extract_output(self, acc):
        n, mean, m2, countries, last = acc
        return {
            "txn_count": n,
            "amount_mean": mean,
            "amount_stddev": math.sqrt(m2 / (n - 1)) if n > 1 else 0.0,
            "usual_countries": sorted(c for c, k in countries.items() if k >= SHARE * n),
            "last_seen": last,
        }


def alert(rule, key, value, threshold, event_us, window=None):
    return {
        "alert_id": hashlib.sha1(f"{rule}|{key}|{event_us}".encode()).hexdigest()[:20],
        "rule": rule,
        "key": key,
        "value": float(value),
        "threshold": float(threshold),
        "event_time": event_us,
        "window_start": window[0] if window else None,
        "window_end": window[1] if window else None,
    }


def transaction_rules(txn, profiles):
    profile = profiles.get(txn["card_id"])
    alerts = []
    if profile is not None and profile["txn_count"] >= MIN_HISTORY:
        z = (txn["amount"] - profile["amount_mean"]) / max(profile["amount_stddev"], MIN_STDDEV)
        if math.isfinite(z) and z >= ZSCORE:
            alerts.append(alert("amount_zscore", txn["card_id"], z, ZSCORE, txn["event_us"]))
        if txn["country"] not in profile["usual_countries"]:
            alerts.append(alert("new_country", txn["card_id"], 1.0, 1.0, txn["event_us"]))
    return alerts


class WindowStats(beam.CombineFn):
    def create_accumulator(self):
        return 0, 0.0, None, set()

    def add_input(self, acc, txn):
        n, total, top, countries = acc
        return n + 1, total + txn["amount"], txn["amount"] if top is None else max(top, txn["amount"]), countries | {txn["country"]}

    def merge_accumulators(self, accs):
        n, total, top, countries = 0, 0.0, None, set()
        for bn, btotal, btop, bcountries in accs:
            n, total, countries = n + bn, total + btotal, countries | bcountries
            if btop is not None:
                top = btop if top is None else max(top, btop)
        return n, total, top, countries

    def extract_output(self, acc):
        return acc


class FormatWindow(beam.DoFn):
    def process(self, element, window=beam.DoFn.WindowParam):
        card, (n, total, top, countries) = element
        yield {
            "card_id": card,
            "window_start": window.start.micros,
            "window_end": window.end.micros,
            "txn_count": n,
            "total_amount": total,
            "max_amount": top,
            "countries": len(countries),
        }


def velocity(row):
    if row["txn_count"] >= VELOCITY:
        return [alert("velocity", row["card_id"], row["txn_count"], VELOCITY, row["window_end"],
                    (row["window_start"], row["window_end"]))]
    return []


def earliest(element):
    _, alerts = element
    return min(alerts, key=lambda a: (a["event_time"], a["alert_id"]))


TS = pa.timestamp("us", tz="UTC")
ALERTS = pa.schema([("alert_id", pa.string()), ("rule", pa.string()), ("key", pa.string()), ("value", pa.float64()),
                    ("threshold", pa.float64()), ("event_time", TS), ("window_start", TS), ("window_end", TS)])
AGGREGATES = pa.schema([("card_id", pa.string()), ("window_start", TS), ("window_end", TS), ("txn_count", pa.int64()),
                        ("total_amount", pa.float64()), ("max_amount", pa.float64()), ("countries", pa.int64())])
PROFILES = pa.schema([("card_id", pa.string()), ("txn_count", pa.int64()), ("amount_mean", pa.float64()),
                      ("amount_stddev", pa.float64()), ("usual_countries", pa.list_(pa.string())), ("last_seen", TS)])


def with_micros(txn):
    txn = dict(txn)
    txn["event_us"] = round(txn.pop("event_time") * 1e6)
    return txn


def main(argv=None):
    args, beam_args = arguments(argv)
    options = PipelineOptions(["--runner=FnApiRunner", *beam_args])
    with beam.Pipeline(options=options) as p:
        txns = read_transactions(p, args.input) | "Micros" >> beam.Map(with_micros)
        profiles = (
            txns
            | "KeyByCard" >> beam.Map(lambda t: (t["card_id"], t))
            | "Profile" >> beam.CombinePerKey(ProfileFn())
        )
        txn_alerts = txns | "TransactionRules" >> beam.FlatMap(transaction_rules, beam.pvalue.AsDict(profiles))
        windows = (
            txns
            | "Timestamp" >> beam.Map(lambda t: TimestampedValue((t["card_id"], t), Timestamp(micros=t["event_us"])))
            | "Sliding" >> beam.WindowInto(SlidingWindows(300, 60))
            | "WindowStats" >> beam.CombinePerKey(WindowStats())
            | "FormatWindow" >> beam.ParDo(FormatWindow())
            | "Unwindow" >> beam.WindowInto(GlobalWindows())
        )
        alerts = (
            (txn_alerts, windows | "VelocityRule" >> beam.FlatMap(velocity))
            | "AllAlerts" >> beam.Flatten()
            | "KeyByPeriod" >> beam.Map(lambda a: ((a["rule"], a["key"], a["event_time"] // COOLDOWN_US), a))
            | "GroupPeriod" >> beam.GroupByKey()
            | "Earliest" >> beam.Map(earliest)
        )
        out = args.output
        alerts | "WriteAlerts" >> WriteToParquet(f"{out}/alerts", ALERTS, file_name_suffix=".parquet")
        windows | "WriteAggregates" >> WriteToParquet(f"{out}/aggregates", AGGREGATES, file_name_suffix=".parquet")
        (
            profiles
            | "ProfileRow" >> beam.Map(lambda kv: {"card_id": kv[0], **kv[1]})
            | "WriteProfiles" >> WriteToParquet(f"{out}/profiles", PROFILES, file_name_suffix=".parquet")
        )


if __name__ == "__main__":
    main()

"""The Kafka side of ``bench.streaming --source kafka``: produces the synthetic
transactions to a topic at a fixed rate, in real time, as a process of its own
(outside the measured pipeline, as a user's producers are).

Record ``i`` has event time ``start + i / rate`` (``start``: when this process
starts producing) and is sent at that wall-clock time, with the event time as
its Kafka timestamp (milliseconds); keys are the card ids, so the topic's
partitions keep each card's order. Records are sent in ticks of 10 ms. At the
end it flushes, waits for the broker's acknowledgements and prints how many
records it sent and how far behind schedule the slowest tick was.

    python -m bench.kafka_producer --bootstrap 127.0.0.1:9092 --topic t --rate 5000 --duration 90
"""

from __future__ import annotations

import argparse
import json
import time


def main(argv=None) -> int:
    from kafka import KafkaProducer

    from hybridflow.io.synthetic import SyntheticTransactions, generate_transactions

    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--params", default="", help="synthetic:// parameters (seed, cards, shares ...)")
    args = parser.parse_args(argv)

    params = dict(kv.split("=", 1) for kv in args.params.split("&") if kv)
    total = int(args.rate * args.duration)
    start = time.time()
    config = SyntheticTransactions.from_params({**params, "rate": f"{args.rate:g}", "count": str(total)})
    lines = generate_transactions(config, 0, total, start_seconds=start)
    producer = KafkaProducer(bootstrap_servers=args.bootstrap, acks=1, linger_ms=5, batch_size=256 * 1024)
    sent, worst_lag = 0, 0.0
    try:
        while sent < total:
            now = time.time()
            due = min(total, int((now - start) * args.rate) + 1)
            worst_lag = max(worst_lag, (now - start) - sent / args.rate)
            for _ in range(due - sent):
                line = next(lines)
                event_ms = int((start + sent / args.rate) * 1000)
                try:
                    key = json.loads(line).get("card_id")
                except (ValueError, AttributeError):
                    key = None  # a malformed record of the stream: any partition
                producer.send(args.topic, key=key.encode() if isinstance(key, str) else None,
                              value=line.encode(), timestamp_ms=event_ms)
                sent += 1
            time.sleep(0.01)
        producer.flush(60)
    finally:
        producer.close()
    print(json.dumps({"sent": sent, "seconds": round(time.time() - start, 1), "worst_lag_s": round(worst_lag, 3)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

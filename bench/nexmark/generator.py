"""A deterministic Nexmark event generator, following Beam's.

Beam's Python SDK reads Nexmark events from a file (its launcher has no
generator); the generator is Beam's Java ``NexmarkGenerator``
(``sdks/java/testing/nexmark``), whose rules this follows with its default
configuration:

- event ``n`` (0-based) is, by ``n % 50``, a person (offset 0), an auction
  (offsets 1-3) or a bid (offsets 4-49): proportions 1 : 3 : 46;
- event time = base time + ``n`` / rate (10,000 events/s by default), in epoch ms;
- ids start at 1000 (persons, auctions); categories 10-14;
- a bid's auction is a "hot" one (the last auction id, rounded down to a
  multiple of 2) with probability 1/2, else one of the last 100 auctions or
  the next 10 (auctions in flight); its bidder a hot one (the last person id
  rounded down to a multiple of 4, + 1) with probability 3/4, else one of the
  last 1,000 persons or the next 10;
- an auction's seller is a hot seller (last person id rounded down to a
  multiple of 4) with probability 3/4, else a recent person; its initial bid
  and every price are ``round(10 ** (6 * u) * 100)`` cents (u uniform in
  [0, 1)); reserve = initial bid + a price; it expires 0-334 ms after it starts at
  10,000 events/s (twice the mean in-flight time of 100 auctions);
- names, cities and states from Java's lists; ``extra`` pads a record to
  Java's average sizes (person 200, auction 500, bid 100 bytes).

The JSON is Beam's (``ParseJsonEventFn``): persons ``id, name, emailAddress,
creditCard, city, state, dateTime, extra``; auctions ``id, itemName,
description, initialBid, reserve, dateTime, expires, seller, category,
extra``; bids ``auction, bidder, price, dateTime, extra``; ``dateTime`` and
``expires`` in epoch milliseconds. Differences from Java, on purpose: one
seeded Python ``random.Random`` stream instead of Java's ``Random`` per event
(so values differ from Java's, their distribution does not), and the auction
length is uniform rather than Java's rate-adjusted formula.

Files: ``persons.jsonl``, ``auctions.jsonl``, ``bids.jsonl`` in ``out``
(each query reads only the kinds it needs, every implementation the same
files), written once per (bids, seed) and cached.

    python -m bench.nexmark.generator --bids 20000 --out /tmp/nexmark
"""

from __future__ import annotations

import argparse
import json
import pathlib
import random

PERSON_PROPORTION, AUCTION_PROPORTION, BID_PROPORTION = 1, 3, 46
TOTAL_PROPORTION = PERSON_PROPORTION + AUCTION_PROPORTION + BID_PROPORTION
FIRST_PERSON_ID = FIRST_AUCTION_ID = 1000
FIRST_CATEGORY_ID, NUM_CATEGORIES = 10, 5
NUM_ACTIVE_PEOPLE, PERSON_ID_LEAD = 1000, 10
NUM_IN_FLIGHT_AUCTIONS, AUCTION_ID_LEAD = 100, 10
HOT_AUCTION_RATIO, HOT_BIDDER_RATIO, HOT_SELLER_RATIO = 2, 4, 4
EVENT_RATE = 10_000  # events per second: Java's firstEventRate
BASE_TIME_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
AVG_SIZE = {"person": 200, "auction": 500, "bid": 100}

FIRST_NAMES = ["Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"]
LAST_NAMES = ["Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"]
US_STATES = ["AZ", "CA", "ID", "OR", "WA", "WY"]
US_CITIES = ["Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle",
             "Kent", "Cheyenne"]


def kind_of(n: int) -> str:
    offset = n % TOTAL_PROPORTION
    return "person" if offset < PERSON_PROPORTION else "auction" if offset < PERSON_PROPORTION + AUCTION_PROPORTION else "bid"


def last_base0_person_id(n: int) -> int:
    epoch, offset = divmod(n, TOTAL_PROPORTION)
    return epoch * PERSON_PROPORTION + min(offset, PERSON_PROPORTION - 1)


def last_base0_auction_id(n: int) -> int:
    epoch, offset = divmod(n, TOTAL_PROPORTION)
    if offset < PERSON_PROPORTION:
        epoch, offset = epoch - 1, AUCTION_PROPORTION - 1
    elif offset >= PERSON_PROPORTION + AUCTION_PROPORTION:
        offset = AUCTION_PROPORTION - 1
    else:
        offset -= PERSON_PROPORTION
    return epoch * AUCTION_PROPORTION + offset


def _next_base0_person_id(rng: random.Random, n: int) -> int:
    people = last_base0_person_id(n) + 1
    active = min(people, NUM_ACTIVE_PEOPLE)
    return people - active + rng.randrange(active + PERSON_ID_LEAD)


def _next_base0_auction_id(rng: random.Random, n: int) -> int:
    last = last_base0_auction_id(n)
    low = max(last - NUM_IN_FLIGHT_AUCTIONS, 0)
    return low + rng.randrange(last - low + 1 + AUCTION_ID_LEAD)


def _price(rng: random.Random) -> int:
    return round(10.0 ** (rng.random() * 6.0) * 100.0)


def _text(rng: random.Random, length: int) -> str:
    return "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=max(length, 0)))


def _padded(rng: random.Random, record: dict, kind: str) -> dict:
    size = len(json.dumps(record, separators=(",", ":")))
    record["extra"] = _text(rng, AVG_SIZE[kind] - size - 12)
    return record


def max_auction_length_ms(rate: int) -> int:
    """Twice the mean time an auction is in flight (100 auctions, 3 in 50 events) at ``rate`` events/s."""
    return 2 * NUM_IN_FLIGHT_AUCTIONS * TOTAL_PROPORTION * 1000 // AUCTION_PROPORTION // rate


def event(rng: random.Random, n: int, rate: int = EVENT_RATE) -> tuple[str, dict]:
    """Event ``n`` at ``rate`` events/s: its kind and its JSON object (Beam's field names)."""
    kind = kind_of(n)
    ms = BASE_TIME_MS + n * 1000 // rate
    if kind == "person":
        record = {
            "id": last_base0_person_id(n) + FIRST_PERSON_ID,
            "name": f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
            "emailAddress": f"{_text(rng, 7)}@{_text(rng, 5)}.com",
            "creditCard": " ".join(f"{rng.randrange(10000):04d}" for _ in range(4)),
            "city": rng.choice(US_CITIES),
            "state": rng.choice(US_STATES),
            "dateTime": ms,
        }
    elif kind == "auction":
        if rng.randrange(HOT_SELLER_RATIO) > 0:
            seller = (last_base0_person_id(n) // HOT_SELLER_RATIO) * HOT_SELLER_RATIO
        else:
            seller = _next_base0_person_id(rng, n)
        initial = _price(rng)
        record = {
            "id": last_base0_auction_id(n) + FIRST_AUCTION_ID,
            "itemName": _text(rng, 20),
            "description": _text(rng, 100),
            "initialBid": initial,
            "reserve": initial + _price(rng),
            "dateTime": ms,
            "expires": ms + rng.randrange(max_auction_length_ms(rate) + 1),
            "seller": seller + FIRST_PERSON_ID,
            "category": FIRST_CATEGORY_ID + rng.randrange(NUM_CATEGORIES),
        }
    else:
        if rng.randrange(HOT_AUCTION_RATIO) > 0:
            auction = (last_base0_auction_id(n) // HOT_AUCTION_RATIO) * HOT_AUCTION_RATIO
        else:
            auction = _next_base0_auction_id(rng, n)
        if rng.randrange(HOT_BIDDER_RATIO) > 0:
            bidder = (last_base0_person_id(n) // HOT_BIDDER_RATIO) * HOT_BIDDER_RATIO + 1
        else:
            bidder = _next_base0_person_id(rng, n)
        record = {
            "auction": auction + FIRST_AUCTION_ID,
            "bidder": bidder + FIRST_PERSON_ID,
            "price": _price(rng),
            "dateTime": ms,
        }
    return kind, _padded(rng, record, kind)


def events_for_bids(bids: int) -> int:
    """The number of events that holds ``bids`` bids (the stream stops after the last bid)."""
    epochs, rest = divmod(bids, BID_PROPORTION)
    return epochs * TOTAL_PROPORTION + (PERSON_PROPORTION + AUCTION_PROPORTION + rest if rest else 0)


def generate(bids: int, out: str, seed: int = 42, rate: int = EVENT_RATE) -> dict[str, str]:
    """Writes the events holding ``bids`` bids at ``rate`` events/s of event time into ``out``
    (once); returns kind -> file path."""
    directory = pathlib.Path(out)
    paths = {kind: str(directory / f"{kind}s.jsonl") for kind in ("person", "auction", "bid")}
    done = directory / "_DONE"
    stamp = f"bids={bids} seed={seed} rate={rate}\n"
    if done.exists() and done.read_text() == stamp:
        return paths
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    files = {kind: open(path + ".tmp", "w", encoding="utf-8") for kind, path in paths.items()}
    try:
        for n in range(events_for_bids(bids)):
            kind, record = event(rng, n, rate)
            files[kind].write(json.dumps(record, separators=(",", ":")) + "\n")
    finally:
        for f in files.values():
            f.close()
    for kind, path in paths.items():
        pathlib.Path(path + ".tmp").replace(path)
    done.write_text(stamp)
    return paths


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bids", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--rate", type=int, default=EVENT_RATE, help="events per second of event time")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    print(generate(args.bids, args.out, args.seed, args.rate))


if __name__ == "__main__":
    main()

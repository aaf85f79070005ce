"""bench.expressions: the three variants agree on what they keep (not timed)."""

import json

from bench import expressions


def test_the_variants_keep_the_same_bids(capsys):
    expressions.main(["--n", "3000"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["n"] == 3000 and printed["kept"] > 0
    assert set(printed["seconds"]) == {"columnar", "per_record", "beam"}

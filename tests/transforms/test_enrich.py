import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from hybridflow import CardProfile, Enrich, MissingKeyPolicy, SchemaError
from hybridflow.testing import START, CreateEvents, batch_pipeline, transactions

PROFILES = [CardProfile("c1", 10, 50.0, 5.0, ["US"], START)]
TXNS = transactions([("c1", 10.0, 1), ("c2", 20.0, 2)])


def run(policy, p):
    profiles = p | "Profiles" >> beam.Create(PROFILES)
    return p | CreateEvents(TXNS) | Enrich(profiles, key="card_id", prefix="profile_", on_missing=policy)


def test_nulls_policy_passes_everything_through():
    with batch_pipeline() as p:
        out = run(MissingKeyPolicy.NULLS, p)
        assert_that(
            out.records | beam.Map(lambda r: (r.card_id, r.amount, r.profile_amount_mean, r.profile_usual_countries)),
            equal_to([("c1", 10.0, 50.0, ["US"]), ("c2", 20.0, None, None)]),
        )
        assert_that(out.dead_letters, equal_to([]), label="no dead letters")


def test_dead_letter_policy_routes_missing_keys():
    with batch_pipeline() as p:
        out = run("dead_letter", p)
        assert_that(out.records | beam.Map(lambda r: r.card_id), equal_to(["c1"]))
        assert_that(
            out.dead_letters | beam.Map(lambda d: (d.error_type, "c2" in d.message, '"t1"' in d.payload)),
            equal_to([("missing_key", True, True)]),
            label="dead letters",
        )


def test_fail_policy_fails_the_pipeline():
    with pytest.raises(Exception, match="missing_key|no reference row"):
        with batch_pipeline() as p:
            run(MissingKeyPolicy.FAIL, p)


def test_output_schema_and_construction_errors():
    p = batch_pipeline()
    profiles = p | "Profiles" >> beam.Create(PROFILES)
    txns = p | CreateEvents(TXNS)
    out = txns | Enrich(profiles, key="card_id", prefix="p_", fields=["amount_mean"])
    names = [n for n, _ in out.records.element_type._fields]
    assert names[-1] == "p_amount_mean" and "p_txn_count" not in names
    with pytest.raises(SchemaError, match="clash"):
        _ = txns | "Clash" >> Enrich(profiles, key="card_id", fields=["card_id"], table_key="txn_count")
    with pytest.raises(SchemaError, match="on_missing"):
        Enrich(profiles, key="card_id", on_missing="skip")
    with pytest.raises(SchemaError, match="key 'nope'"):
        _ = txns | "BadKey" >> Enrich(profiles, key="nope")

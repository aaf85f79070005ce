"""bench.streaming: the runner x source x rate ladder of make bench-streaming."""

from bench.streaming import matrix


def test_each_ladder_stops_at_its_first_unsustained_rate():
    capacity = {("prism", "synthetic"): 5000, ("prism", "kafka"): 2000, ("flink", "synthetic"): 0}
    ran = []

    def run(runner, source, rate):
        ran.append((runner, source, rate))
        return {"runner": runner, "source": source, "rate": rate, "sustained": rate <= capacity[runner, source]}

    runs = matrix(["prism"], ["synthetic", "kafka"], [10000, 2000, 5000], run)
    assert ran == [("prism", "synthetic", 2000), ("prism", "synthetic", 5000), ("prism", "synthetic", 10000),
                   ("prism", "kafka", 2000), ("prism", "kafka", 5000)]
    assert [(r["source"], r["rate"], r.get("verdict")) for r in runs if r.get("verdict") == "not run"] == [
        ("kafka", 10000, "not run")]
    assert runs[-1]["reason"] == "5000/s was not sustained"

    ran.clear()
    runs = matrix(["flink"], ["synthetic"], [2000, 5000], run)
    assert ran == [("flink", "synthetic", 2000)]  # nothing above a first rate that fails
    assert [r["sustained"] for r in runs] == [False, None]

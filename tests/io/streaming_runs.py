"""Running an unbounded pipeline against a real service until its results are in."""

import time

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from hybridflow.testing import collected


def run_until(build, flags, directory, expected: int, timeout: float = 120.0, poll: float = 0.5):
    """Builds with ``build(p)``, runs, waits until ``directory`` (a Collect
    directory) holds ``expected`` elements or ``timeout`` passes, cancels, and
    returns what was collected. The pipeline must not finish by itself."""
    p = beam.Pipeline(options=PipelineOptions(list(flags)))
    build(p)
    result = p.run()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            got = collected(directory)
            if len(got) >= expected:
                time.sleep(poll * 4)  # let anything unexpected arrive too
                return collected(directory)
            time.sleep(poll)
        return collected(directory)
    finally:
        try:
            result.cancel()
        except Exception:  # noqa: BLE001 - a runner that already stopped cannot be cancelled
            pass

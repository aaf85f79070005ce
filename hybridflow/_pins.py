"""Version pins shared by the Makefile, the provisioning tools and the tests.

``BEAM_VERSION`` is the Apache Beam version the local runners are built for:
the Prism binary's name, the Java jars (Flink job server, expansion services)
built by ``tools/`` and the Python SDK of the test venv (``constraints.txt``,
checked against this by a test) are all of this version. The library itself
accepts a range of Beam releases (``pyproject.toml``).
"""

# 2.70.0, not the newest 2.77.0: it is the newest Beam version for which every
# Java piece this package runs can be assembled from Maven modules served here
# (Flink 1.19 runner module + job service -> the Flink job server; Kafka IO +
# expansion service), and the Prism module is served by the Go proxy at the
# same tag. The Python SDK is pinned to the same version so all sides agree.
BEAM_VERSION = "2.70.0"

# The Flink version of the job server `make tools` builds, and the one the
# `flink` runner profile asks for: beam-runners-flink-1.19 is the only Flink
# runner module served at BEAM_VERSION (none for 1.18, 1.20 or 2.x).
FLINK_VERSION = "1.19"

# The one Beam module of the Flink job server not at BEAM_VERSION:
# beam-runners-java-job-service is served only at 2.62.0 and 2.65.0, so the
# 2.70.0 job server takes its job-service classes from 2.65.0 (everything
# else in the jar, runner included, is BEAM_VERSION).
FLINK_JOB_SERVICE_VERSION = "2.65.0"

# The Prism runner binary. Prism is a separate Go program that speaks Beam's
# portable job API; `make tools` builds it at this version and puts it under
# the name the Python SDK (BEAM_VERSION) looks for, so every PrismRunner /
# DirectRunner run uses it with no flag. Not 2.70.0: Prism 2.70 runs the main
# input of a streaming job before a side input computed from a bounded branch
# is ready (the fraud pipeline reading Kafka raised 5 of 46 alerts: the
# transaction rules saw no card profiles); Prism 2.77 waits, as Beam's model
# requires. The whole test suite runs on this combination.
PRISM_VERSION = "2.77.0"

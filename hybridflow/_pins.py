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

# Beam's Spark runner major version: the `spark` profile's Spark 3 job server
# (beam-runners-spark-3 at BEAM_VERSION with Spark 3.5, built by `make tools`).
SPARK_VERSION = "3"

# The one Beam module of the Flink and Spark job servers not at BEAM_VERSION:
# beam-runners-java-job-service is served only at 2.62.0 and 2.65.0, so the
# 2.70.0 job servers take their job-service classes from 2.65.0 (everything
# else in the jars, runners included, is BEAM_VERSION).
JOB_SERVICE_VERSION = "2.65.0"

# The Prism runner binary. Prism is a separate Go program that speaks Beam's
# portable job API; `make tools` builds it at this version and puts it under
# the name the Python SDK (BEAM_VERSION) looks for, so every PrismRunner /
# DirectRunner run uses it with no flag. Not 2.70.0: Prism 2.70 runs the main
# input of a streaming job before a side input computed from a bounded branch
# is ready (the fraud pipeline reading Kafka raised 5 of 46 alerts: the
# transaction rules saw no card profiles); Prism 2.77 waits, as Beam's model
# requires. The whole test suite runs on this combination.
PRISM_VERSION = "2.77.0"

# The Flink Kubernetes Operator whose CRDs `hybridflow k8s` manifests are
# validated against: the CRD YAML ships in its Maven artifact
# org.apache.flink:flink-kubernetes-operator-api (served at 1.7.0 and 1.10.0;
# 1.8, 1.9, 1.11-1.13 refused). 1.10 knows Flink 1.19 (flinkVersion v1_19).
FLINK_OPERATOR_VERSION = "1.10.0"

# Apache Airflow with its Beam and Google providers, installed in their own
# venv by `make tools` (Airflow's pins conflict with Beam's in one venv; every
# package pinned by tools/airflow/constraints.txt) to run the DAGs
# `hybridflow airflow-dag` writes.
AIRFLOW_VERSION = "3.3.2"
AIRFLOW_BEAM_PROVIDER_VERSION = "6.3.1"
AIRFLOW_GOOGLE_PROVIDER_VERSION = "22.8.0"

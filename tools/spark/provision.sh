#!/usr/bin/env bash
# Builds Beam's Spark 3 job server for the pinned Beam version with Maven
# (tools/spark/pom.xml: the Beam Spark runner module + job service + Spark
# 3.5 core and streaming, shaded into one jar) and puts it where Beam's Python
# SparkRunner looks before it would download one:
#
#   ~/.apache_beam/cache/jars/beam-runners-spark-3-job-server-<BEAM>.jar
#
# With it there, --runner=SparkRunner (the `spark` profile) starts it with no
# download. Idempotent (tools/job-server.sh): a second run does nothing.
# First run: ~7 min and ~300 MB into ~/.m2 (Spark and Hadoop); the jar is 270 MB.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/../pins.sh"
. "$HERE/../job-server.sh"
provision_job_server "spark job server $SPARK_VERSION/$BEAM_VERSION" \
  "beam-runners-spark-${SPARK_VERSION}-job-server-${BEAM_VERSION}.jar" \
  "$BEAM_VERSION $SPARK_VERSION $JOB_SERVICE_VERSION" \
  -Dbeam.version="$BEAM_VERSION" -Djob.service.version="$JOB_SERVICE_VERSION" -Dspark.major="$SPARK_VERSION"

#!/usr/bin/env bash
# Builds Beam's Flink job server for the pinned Beam and Flink versions with
# Maven (tools/flink/pom.xml: the Beam Flink runner module + job service +
# their dependencies, shaded into one jar) and puts it where Beam's Python
# FlinkRunner looks before it would download one:
#
#   ~/.apache_beam/cache/jars/beam-runners-flink-<FLINK>-job-server-<BEAM>.jar
#
# With it there, --runner=FlinkRunner --flink_version=<FLINK> starts it with no
# download. Idempotent (tools/job-server.sh): a second run does nothing (FORCE=1
# rebuilds; a jar built from an older pom.xml is rebuilt). First run: ~60 s and
# ~350 MB into ~/.m2; later rebuilds ~20 s.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/../pins.sh"
. "$HERE/../job-server.sh"
provision_job_server "flink job server $FLINK_VERSION/$BEAM_VERSION" \
  "beam-runners-flink-${FLINK_VERSION}-job-server-${BEAM_VERSION}.jar" \
  "$BEAM_VERSION $FLINK_VERSION $JOB_SERVICE_VERSION" \
  -Dbeam.version="$BEAM_VERSION" -Djob.service.version="$JOB_SERVICE_VERSION" -Dflink.major="$FLINK_VERSION"

#!/usr/bin/env bash
# Builds Beam's Flink job server for the pinned Beam and Flink versions with
# Maven (tools/flink/pom.xml: the Beam Flink runner module + job service +
# their dependencies, shaded into one jar) and puts it where Beam's Python
# FlinkRunner looks before it would download one:
#
#   ~/.apache_beam/cache/jars/beam-runners-flink-<FLINK>-job-server-<BEAM>.jar
#
# With it there, --runner=FlinkRunner --flink_version=<FLINK> starts it with no
# download. Idempotent: a second run does nothing (FORCE=1 rebuilds; a jar built
# from an older pom.xml is rebuilt). First run: ~60 s and ~350 MB into ~/.m2;
# later rebuilds ~20 s.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/../pins.sh"
DEST=$BEAM_CACHE/jars
NAME=beam-runners-flink-${FLINK_VERSION}-job-server-${BEAM_VERSION}.jar
JAR=$DEST/$NAME
STAMP=$JAR.pom-sha256   # which pom.xml (and pins) built the jar
want=$( (cat "$HERE/pom.xml"; echo "$BEAM_VERSION $FLINK_VERSION $FLINK_JOB_SERVICE_VERSION") | sha256sum | cut -d' ' -f1)

if [[ -s $JAR && ${FORCE:-0} != 1 ]]; then
  # A jar put there by other means (no stamp) is trusted; ours is rebuilt when the recipe changed.
  if [[ ! -f $STAMP || $(cat "$STAMP") == "$want" ]]; then
    echo "flink job server $FLINK_VERSION/$BEAM_VERSION: already provisioned ($JAR)"
    exit 0
  fi
  echo "flink job server: $NAME was built from another pom.xml; rebuilding"
fi
need java "a JDK 17 (e.g. apt-get install openjdk-17-jdk-headless)"
need mvn "Maven 3.8 or newer (e.g. apt-get install maven)"
mkdir -p "$DEST"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hybridflow-flink.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cp "$HERE/pom.xml" "$WORK/pom.xml"
echo "flink job server $FLINK_VERSION/$BEAM_VERSION (job-service module $FLINK_JOB_SERVICE_VERSION): mvn package"
started=$SECONDS
# -U: do not trust "not found" markers cached in ~/.m2 by earlier lookups.
( cd "$WORK" && mvn -B -q -U -Dstyle.color=never ${MVN_ARGS:-} \
    -Dbeam.version="$BEAM_VERSION" -Djob.service.version="$FLINK_JOB_SERVICE_VERSION" \
    -Dflink.major="$FLINK_VERSION" package )
# Replace atomically: a running job server keeps its (old) inode.
cp "$WORK/target/$NAME" "$JAR.tmp.$$" && mv -f "$JAR.tmp.$$" "$JAR"
echo "$want" > "$STAMP"
echo "flink job server: built in $((SECONDS - started)) s -> $JAR ($(du -h "$JAR" | cut -f1))"

#!/usr/bin/env bash
# Provisions the Java side of Beam's cross-language Kafka IO: the classpath of a Kafka expansion
# service plus the Java SDK worker (see pom.xml for why it is assembled from Beam Java 2.73.0
# modules). Idempotent: redone only when pom.xml changes.
#
#   tools/kafka/provision.sh      -> $HYBRIDFLOW_TOOLS_HOME/kafka-expansion-service/lib
#                                    (default ~/.cache/hybridflow/kafka-expansion-service/lib)
# hybridflow.io.kafka_expansion.KafkaExpansionService starts it (expansion service + worker pool).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LIB=${HYBRIDFLOW_TOOLS_HOME:-$HOME/.cache/hybridflow}/kafka-expansion-service/lib
fp=$(sha256sum "$HERE/pom.xml" | cut -c1-16)
if [[ ! -f $LIB/.complete || $(cat "$LIB/.complete") != "$fp" ]]; then
  rm -rf "$LIB"; mkdir -p "$LIB"
  s=$SECONDS
  mvn -q -B -f "$HERE/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIB"
  echo "$fp" > "$LIB/.complete"
  echo "[tools/kafka] mvn copy-dependencies took $((SECONDS - s))s" >&2
fi
echo "[tools/kafka] kafka expansion service: $(ls "$LIB" | wc -l) jars in $LIB" >&2

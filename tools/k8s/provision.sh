#!/usr/bin/env bash
# Fetches the Flink Kubernetes Operator's CRDs for validating the manifests
# `hybridflow k8s` writes: they ship inside the operator's Maven artifact
# org.apache.flink:flink-kubernetes-operator-api (META-INF/fabric8/*.yml), so
# Maven fetches the jar and the CRD YAML files are extracted from it into
#
#   ~/.cache/hybridflow/k8s/flink-kubernetes-operator-<VERSION>/*.yml
#
# Idempotent: a second run does nothing. First run: a few seconds (190 kB).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/../pins.sh"
DEST=${HYBRIDFLOW_TOOLS_HOME:-$HOME/.cache/hybridflow}/k8s/flink-kubernetes-operator-$FLINK_OPERATOR_VERSION
if [[ -s $DEST/flinkdeployments.flink.apache.org-v1.yml && ${FORCE:-0} != 1 ]]; then
  echo "flink kubernetes operator $FLINK_OPERATOR_VERSION CRDs: already provisioned ($DEST)"
  exit 0
fi
need mvn "Maven 3.8 or newer (e.g. apt-get install maven)"
need unzip "unzip (e.g. apt-get install unzip)"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hybridflow-k8s.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ARTIFACT=org.apache.flink:flink-kubernetes-operator-api:$FLINK_OPERATOR_VERSION
echo "flink kubernetes operator $FLINK_OPERATOR_VERSION CRDs: mvn dependency:copy $ARTIFACT"
mvn -B -q -Dstyle.color=never ${MVN_ARGS:-} dependency:copy -Dartifact="$ARTIFACT" -DoutputDirectory="$WORK"
unzip -q -j -o "$WORK"/flink-kubernetes-operator-api-*.jar 'META-INF/fabric8/*.yml' -d "$WORK/crds"
mkdir -p "$(dirname "$DEST")"
rm -rf "$DEST" && mv "$WORK/crds" "$DEST"
echo "flink kubernetes operator CRDs: $(ls "$DEST" | wc -l) files -> $DEST"

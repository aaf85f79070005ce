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
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hybridflow-k8s.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ARTIFACT=org.apache.flink:flink-kubernetes-operator-api:$FLINK_OPERATOR_VERSION
echo "flink kubernetes operator $FLINK_OPERATOR_VERSION CRDs: mvn dependency:copy $ARTIFACT"
mvn -B -q -Dstyle.color=never ${MVN_ARGS:-} dependency:copy -Dartifact="$ARTIFACT" -DoutputDirectory="$WORK"
"${PYTHON:-python3}" - "$WORK"/flink-kubernetes-operator-api-*.jar "$WORK/crds" <<'PY'
import os, sys, zipfile
jar, out = sys.argv[1], sys.argv[2]
os.makedirs(out)
with zipfile.ZipFile(jar) as z:
    for name in z.namelist():
        if name.startswith("META-INF/fabric8/") and name.endswith(".yml"):
            with open(os.path.join(out, os.path.basename(name)), "wb") as f:
                f.write(z.read(name))
PY
mkdir -p "$(dirname "$DEST")"
rm -rf "$DEST" && mv "$WORK/crds" "$DEST"
echo "flink kubernetes operator CRDs: $(ls "$DEST" | wc -l) files -> $DEST"

#!/usr/bin/env bash
# Provisions a real HDFS for the hdfs:// tests: the jars of Hadoop's MiniDFSCluster (see pom.xml) and
# MiniHdfs.java, a small main that starts it. Idempotent: redone only when pom.xml or MiniHdfs.java change.
#
#   tools/hdfs/provision.sh      -> $HYBRIDFLOW_TOOLS_HOME/hdfs/{lib,classes}
#                                   (default ~/.cache/hybridflow/hdfs)
# hybridflow.testing.services.HdfsCluster starts it (java -cp 'classes:lib/*' MiniHdfs ...).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HOME_DIR=${HYBRIDFLOW_TOOLS_HOME:-$HOME/.cache/hybridflow}/hdfs
LIB=$HOME_DIR/lib CLASSES=$HOME_DIR/classes
fp=$(sha256sum "$HERE/pom.xml" | cut -c1-16)
if [[ ! -f $LIB/.complete || $(cat "$LIB/.complete") != "$fp" ]]; then
  rm -rf "$LIB"; mkdir -p "$LIB"
  s=$SECONDS
  mvn -q -B -f "$HERE/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIB"
  echo "$fp" > "$LIB/.complete"
  echo "[tools/hdfs] mvn copy-dependencies took $((SECONDS - s))s" >&2
fi
fp=$(cat "$HERE/pom.xml" "$HERE/MiniHdfs.java" | sha256sum | cut -c1-16)
if [[ ! -f $CLASSES/.complete || $(cat "$CLASSES/.complete") != "$fp" ]]; then
  rm -rf "$CLASSES"; mkdir -p "$CLASSES"
  javac -nowarn -cp "$LIB/*" -d "$CLASSES" "$HERE/MiniHdfs.java"
  echo "$fp" > "$CLASSES/.complete"
fi
echo "[tools/hdfs] hdfs minicluster: $(ls "$LIB" | wc -l) jars in $LIB, MiniHdfs in $CLASSES" >&2

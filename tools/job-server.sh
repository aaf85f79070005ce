# Sourced by tools/flink/provision.sh and tools/spark/provision.sh: builds a
# Beam portable job server with Maven from the pom.xml beside the calling
# script (the runner module + job service + dependencies, shaded into one jar;
# the registry serves no shaded job-server jar) and puts it where Beam's Python
# runner looks before it would download one: ~/.apache_beam/cache/jars/NAME.
#
#   provision_job_server LABEL NAME RECIPE -Dprop=value ...
#
# RECIPE (the pinned versions the properties come from) is hashed with the
# pom.xml into NAME.pom-sha256, which says what built the jar.
# Idempotent: a jar built from the same pom.xml and properties is kept (FORCE=1
# rebuilds; a jar built from an older recipe is rebuilt; a jar put there by
# other means, without a stamp, is trusted).
provision_job_server() {
  local label=$1 name=$2 recipe=$3; shift 3
  local here dest jar stamp want work started
  here=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)
  dest=$BEAM_CACHE/jars
  jar=$dest/$name
  stamp=$jar.pom-sha256   # which pom.xml (and properties) built the jar
  want=$( (cat "$here/pom.xml"; echo "$recipe") | sha256sum | cut -d' ' -f1)
  if [[ -s $jar && ${FORCE:-0} != 1 ]]; then
    if [[ ! -f $stamp || $(cat "$stamp") == "$want" ]]; then
      echo "$label: already provisioned ($jar)"
      return 0
    fi
    echo "$label: $name was built from another pom.xml; rebuilding"
  fi
  need java "a JDK 17 (e.g. apt-get install openjdk-17-jdk-headless)"
  need mvn "Maven 3.8 or newer (e.g. apt-get install maven)"
  mkdir -p "$dest"
  work=$(mktemp -d "${TMPDIR:-/tmp}/hybridflow-jobserver.XXXXXX")
  cp "$here/pom.xml" "$work/pom.xml"
  echo "$label: mvn package $*"
  started=$SECONDS
  # -U: do not trust "not found" markers cached in ~/.m2 by earlier lookups.
  if ! ( cd "$work" && mvn -B -q -U -Dstyle.color=never ${MVN_ARGS:-} "$@" package ); then
    rm -rf "$work"
    return 1
  fi
  # Replace atomically: a running job server keeps its (old) inode.
  cp "$work/target/$name" "$jar.tmp.$$" && mv -f "$jar.tmp.$$" "$jar"
  rm -rf "$work"
  echo "$want" > "$stamp"
  echo "$label: built in $((SECONDS - started)) s -> $jar ($(du -h "$jar" | cut -f1))"
}

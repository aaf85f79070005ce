#!/usr/bin/env bash
# Provisions the local services hybridflow's tests start (no Docker): idempotent and cached.
#
#   tools/services/provision.sh [all | kafka | pubsub | bigtable | s3 | gcs | bigquery | postgres]...
#
# Everything goes under $HYBRIDFLOW_TOOLS_HOME/services (default ~/.cache/hybridflow/services),
# where hybridflow.testing.services looks for it:
#   kafka-broker/lib/          Kafka broker jars (KRaft), from Maven (tools/services/kafka-broker/pom.xml)
#   bin/pstest-server          Pub/Sub fake: our Go main over cloud.google.com/go/pubsub/v2/pstest
#   bin/bigtable-emulator      Bigtable emulator (go install cloud.google.com/go/bigtable/cmd/emulator)
#   venv-moto/                 moto[server] (S3), in its own venv: its Flask/cfn-lint deps stay out of Beam's
#   venv-gcs/                  gcp-storage-emulator (GCS JSON API)
#   venv-bq/                   bqemulator (BigQuery REST + Storage Read gRPC on DuckDB)
# PostgreSQL comes from the Debian package (apt-get, as root) when no initdb is installed.
# Each part is redone only when its inputs (pom, Go sources, pinned versions) change.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=${HYBRIDFLOW_TOOLS_HOME:-$HOME/.cache/hybridflow}/services
PYTHON=${PYTHON:-python3}
mkdir -p "$ROOT/bin"

KAFKA_BROKER_POM=$HERE/kafka-broker/pom.xml
BIGTABLE_EMULATOR_VERSION=v1.58.0
MOTO_SPEC='moto[server]==5.2.5'
GCS_SPEC='gcp-storage-emulator==2026.7.19'
# bqemulator 1.4.0 pulls duckdb 2.x, but it loads DuckDB's spatial extension at start and the
# newest extension wheel on PyPI is 1.5.5 (there is no network for INSTALL spatial): pin duckdb
# to 1.5.5. numpy is an undeclared runtime dependency of bqemulator.
BQ_SPEC='bqemulator==1.4.0 numpy duckdb==1.5.5 duckdb-extension-spatial==1.5.5 duckdb-extension-avro==1.5.5'

log() { echo "[tools/services] $*" >&2; }
timed() { local s=$SECONDS; "$@"; log "$1 ${2:-} took $((SECONDS - s))s"; }
# fingerprint of a component's inputs; the component is rebuilt when it changes
fingerprint() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }
fresh() { [[ -f $1 && $(cat "$1") == "$2" ]]; }

want() { local w; for w in "${WHAT[@]}"; do [[ $w == all || $w == "$1" ]] && return 0; done; return 1; }
WHAT=("${@:-all}")

if want kafka; then
  lib=$ROOT/kafka-broker/lib; fp=$(fingerprint "$KAFKA_BROKER_POM")
  if ! fresh "$lib/.complete" "$fp"; then
    rm -rf "$lib"; mkdir -p "$lib"
    timed mvn -q -B -f "$KAFKA_BROKER_POM" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$lib"
    echo "$fp" > "$lib/.complete"
  fi
  log "kafka broker: $(ls "$lib" | wc -l) jars in $lib"
fi

if want pubsub; then
  fp=$(fingerprint "$HERE/pstest/main.go" "$HERE/pstest/go.mod" "$HERE/pstest/go.sum")
  if ! fresh "$ROOT/bin/.pstest-server" "$fp" || [[ ! -x $ROOT/bin/pstest-server ]]; then
    (cd "$HERE/pstest" && timed go build -trimpath -o "$ROOT/bin/pstest-server" .)
    echo "$fp" > "$ROOT/bin/.pstest-server"
  fi
  log "pubsub fake: $ROOT/bin/pstest-server"
fi

if want bigtable; then
  if ! fresh "$ROOT/bin/.bigtable-emulator" "$BIGTABLE_EMULATOR_VERSION" || [[ ! -x $ROOT/bin/bigtable-emulator ]]; then
    gobin=$(mktemp -d)
    GOBIN=$gobin timed go install "cloud.google.com/go/bigtable/cmd/emulator@$BIGTABLE_EMULATOR_VERSION"
    mv "$gobin/emulator" "$ROOT/bin/bigtable-emulator"; rm -rf "$gobin"
    echo "$BIGTABLE_EMULATOR_VERSION" > "$ROOT/bin/.bigtable-emulator"
  fi
  log "bigtable emulator $BIGTABLE_EMULATOR_VERSION: $ROOT/bin/bigtable-emulator"
fi

venv() {  # venv NAME SPEC...: a venv with exactly these pinned packages
  local dir=$ROOT/venv-$1; shift
  if ! fresh "$dir/.complete" "$*"; then
    rm -rf "$dir"
    "$PYTHON" -m venv "$dir"
    timed "$dir/bin/pip" install -q --disable-pip-version-check "$@"
    echo "$*" > "$dir/.complete"
  fi
}

if want s3; then venv moto $MOTO_SPEC; log "s3 (moto): $ROOT/venv-moto/bin/moto_server"; fi
if want gcs; then venv gcs $GCS_SPEC; log "gcs: $ROOT/venv-gcs/bin/gcp-storage-emulator"; fi

if want bigquery; then
  # shellcheck disable=SC2086
  venv bq $BQ_SPEC
  # The extension wheels ship the files but do not register them: INSTALL '<file>' copies each into
  # ~/.duckdb/extensions/<version>/<platform>/, after which bqemulator's `INSTALL spatial` is a no-op.
  "$ROOT/venv-bq/bin/python" - <<'PY'
import glob, importlib, os, duckdb
for ext in ("spatial", "avro"):
    home = os.path.expanduser(f"~/.duckdb/extensions/v{duckdb.__version__}")
    if glob.glob(f"{home}/*/{ext}.duckdb_extension"):
        continue
    mod = importlib.import_module("duckdb_extension_" + ext)
    (src,) = glob.glob(os.path.join(os.path.dirname(mod.__file__), "extensions",
                                    f"v{duckdb.__version__}", f"{ext}.duckdb_extension"))
    con = duckdb.connect()
    con.execute(f"INSTALL '{src}'")
    con.execute(f"LOAD {ext}")
    print(f"[tools/services] installed DuckDB extension {ext} {duckdb.__version__}")
PY
  log "bigquery (bqemulator): $ROOT/venv-bq/bin/bqemulator"
fi

if want postgres; then
  if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && ! command -v initdb >/dev/null; then
    sudo=(); [[ $(id -u) == 0 ]] || sudo=(sudo)
    log "installing Debian's postgresql"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive timed "${sudo[@]}" apt-get install -y -qq --no-install-recommends postgresql
  fi
  if [[ $(id -u) == 0 ]] && ! id postgres >/dev/null 2>&1; then
    echo "[tools/services] running as root but there is no 'postgres' user to run the server as" >&2; exit 1
  fi
  log "postgresql: $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -1)"
fi

#!/usr/bin/env bash
# Builds Beam's Prism runner at PRISM_VERSION (hybridflow/_pins.py says why it
# differs from BEAM_VERSION) with the Go toolchain and puts it where Beam's
# Python SDK (BEAM_VERSION) looks before it would download one:
#
#   ~/.apache_beam/cache/prism/bin/apache_beam-v<V>-prism-<os>-<arch>.zip   (same layout as
#                                                   the release asset: one member, the binary)
#   ~/.apache_beam/cache/prism/bin/apache_beam-v<V>-prism-<os>-<arch>       (that member, unzipped,
#                                                   which is what Beam runs)
#
# With both there, --runner=PrismRunner (and DirectRunner, when it picks Prism)
# start it with no flag and no download. Idempotent: a second run does nothing;
# FORCE=1 rebuilds. The Go module and build caches make a rebuild ~10 s; the
# first build (~110 s) fetches Prism's module dependencies through the Go proxy.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../pins.sh"
PYTHON=${PYTHON:-python3}
DEST=$BEAM_CACHE/prism/bin
case "$(uname -s)" in Linux) OS=linux ;; Darwin) OS=darwin ;; *) echo "prism: unsupported OS $(uname -s)" >&2; exit 1 ;; esac
case "$(uname -m)" in x86_64|amd64) ARCH=amd64 ;; aarch64|arm64) ARCH=arm64 ;; *) echo "prism: unsupported arch $(uname -m)" >&2; exit 1 ;; esac
NAME=apache_beam-v${BEAM_VERSION}-prism-${OS}-${ARCH}
BIN=$DEST/$NAME
ZIP=$DEST/$NAME.zip
STAMP=$BIN.version  # the Prism version really in $BIN

if [[ -x $BIN && -s $ZIP && $(cat "$STAMP" 2>/dev/null) == "$PRISM_VERSION" && ${FORCE:-0} != 1 ]]; then
  echo "prism $PRISM_VERSION (for Beam $BEAM_VERSION): already provisioned ($BIN)"
  exit 0
fi
need go "Go 1.22 or newer (e.g. apt-get install golang-go)"
mkdir -p "$DEST"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hybridflow-prism.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
echo "prism $PRISM_VERSION: go install github.com/apache/beam/sdks/v2/go/cmd/prism@v$PRISM_VERSION"
started=$SECONDS
# GONOSUMDB: the Go checksum database answers 404 for some Beam tags (v2.62.0,
# v2.70.0), so the Beam module alone skips it; it still comes from the Go
# module proxy and every dependency is still verified against go.sum/the DB.
GONOSUMDB=github.com/apache/beam CGO_ENABLED=0 GOBIN="$WORK" \
  go install "github.com/apache/beam/sdks/v2/go/cmd/prism@v${PRISM_VERSION}"
"$PYTHON" - "$WORK/prism" "$WORK/$NAME.zip" "$NAME" <<'PY'
import sys, zipfile
src, dst, member = sys.argv[1:]
info = zipfile.ZipInfo(member)
info.external_attr = 0o755 << 16  # rwxr-xr-x, as in the release zip
info.compress_type = zipfile.ZIP_DEFLATED
with zipfile.ZipFile(dst, "w") as z, open(src, "rb") as f:
    z.writestr(info, f.read())
PY
chmod 755 "$WORK/prism"
# Replace atomically: a running Prism keeps its (old) inode.
mv -f "$WORK/prism" "$BIN"
mv -f "$WORK/$NAME.zip" "$ZIP"
echo "$PRISM_VERSION" > "$STAMP"
echo "prism $PRISM_VERSION (for Beam $BEAM_VERSION): built in $((SECONDS - started)) s -> $BIN ($(du -h "$BIN" | cut -f1)), $ZIP"

#!/usr/bin/env bash
# make test-beam-range: the transform tests with the highest Beam release of the range pyproject.toml
# declares. The lowest end of the range is the pin of constraints.txt, which the main venv (.venv)
# already runs the whole suite with.
#
# The venv is cached per (pyproject.toml, Beam version): .venv-beam-<version>. Only the transform
# and columnar tests run there; they need no runner or service beyond what Beam brings.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
PYTHON=${PYTHON:-python3}
started=$SECONDS
# the range's upper series, e.g. "<2.79" -> 2.78: the newest 2.78.x the index serves
series=$("$PYTHON" - <<'PY'
import re, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
spec = next(d for d in deps if re.match(r"apache-beam\b", d))
major, minor = re.search(r"<(\d+)\.(\d+)", spec).groups()
print(f"{major}.{int(minor) - 1}")
PY
)
venv=${BEAM_RANGE_VENV:-.venv-beam-$series}
stamp=$venv/.stamp-$(sha256sum pyproject.toml | cut -c1-16)
if [[ ! -f $stamp ]]; then
  echo "beam-range: creating $venv with apache-beam $series.* (cached for the next runs)"
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check --upgrade pip
  "$venv/bin/pip" install -q --disable-pip-version-check -e '.[test,gcp]' "apache-beam[gcp,test,yaml]~=$series.0"
  touch "$stamp"
fi
version=$("$venv/bin/python" -c 'import apache_beam; print(apache_beam.__version__)')
echo "beam-range: tests/transforms tests/columnar with apache-beam $version ($venv)"
"$venv/bin/python" -m pytest tests/transforms tests/columnar -q "$@"
echo "beam-range: apache-beam $version passed in $((SECONDS - started)) s"

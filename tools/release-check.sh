#!/usr/bin/env bash
# make release-check: the release as a user gets it, never the checkout.
#
#   1. build the sdist and the wheel (python -m build), `twine check --strict` both;
#   2. install the wheel, with no extra, into a clean venv (its dependencies are cached in
#      ~/.cache/hybridflow/release-venv-<hash of pyproject.toml + constraints.txt>; the wheel itself is
#      reinstalled every time), and work from an empty temporary directory, so nothing of the
#      checkout is on sys.path;
#   3. import every module that needs no extra (the runtime half of tests/test_packaging.py's scan);
#   4. hybridflow list / describe fraud / generate / run fraud --mode batch on a small synthetic
#      history / template build fraud / template launch fraud --dry-run with Dataflow options.
#
# PYTHON is the interpreter of the clean venv; BUILD_PYTHON one with `build` and `twine` (the
# release extra, in .venv). Exit status: the first failing step's.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
BUILD_PYTHON=${BUILD_PYTHON:-$repo/.venv/bin/python}
work=$(mktemp -d /tmp/hybridflow-release.XXXXXX)
trap 'rm -rf "$work"' EXIT
started=$SECONDS
step() { echo "release-check [$((SECONDS - started)) s]: $*"; }

step "build sdist + wheel"
"$BUILD_PYTHON" -m build --sdist --wheel --outdir "$work/dist" "$repo" >"$work/build.log" 2>&1 \
  || { tail -30 "$work/build.log"; exit 1; }
"$BUILD_PYTHON" -m twine check --strict "$work"/dist/*
wheel=$(ls "$work"/dist/hybridflow-*.whl)
sdist=$(ls "$work"/dist/hybridflow-*.tar.gz)
# the sdist has what a rebuild needs, the wheel what a user needs (and no tests)
tar -tzf "$sdist" >"$work/sdist.txt"
grep -q '/LICENSE$' "$work/sdist.txt" && grep -q '/pyproject.toml$' "$work/sdist.txt"
"$BUILD_PYTHON" - "$wheel" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
need = ["hybridflow/py.typed", "hybridflow/runners_config/dataflow.yaml", "hybridflow/flex/requirements.lock",
        "hybridflow/monitoring/dashboards/hybridflow.json", "hybridflow/beam_yaml/providers.yaml"]
missing = [n for n in need if n not in names]
licence = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
stray = [n for n in names if n.startswith(("tests/", "bench/", "tools/"))]
assert not missing and licence and not stray, (missing, licence, stray)
PY

key=$(cat "$repo/pyproject.toml" "$repo/constraints.txt" | sha256sum | cut -c1-16)
venv=${RELEASE_VENV:-$HOME/.cache/hybridflow/release-venv-$key}
if [[ ! -x $venv/bin/hybridflow ]]; then
  step "clean venv $venv (dependencies of the wheel, once per pyproject.toml + constraints.txt)"
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -c "$repo/constraints.txt" "$wheel"
fi
step "install the wheel into $venv"
"$venv/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$wheel"

cd "$work" && mkdir run && cd run  # an empty directory: no checkout, no templates/
export PYTHONNOUSERSITE=1
unset PYTHONPATH
step "import every module that needs no extra"
"$venv/bin/python" - <<'PY'
import importlib, pkgutil, sys
import hybridflow
assert "site-packages" in hybridflow.__file__, hybridflow.__file__  # the wheel, not a checkout
needs_extra = ("hybridflow.testing",)  # the test extra; every other module imports its extras lazily
failed = []
names = [m.name for m in pkgutil.walk_packages(hybridflow.__path__, "hybridflow.")
         if not m.name.startswith(needs_extra)]
for name in names:
    try:
        importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - reported below
        failed.append(f"{name}: {type(exc).__name__}: {exc}")
assert not failed, "\n".join(failed)
print(f"imported {len(names)} modules of hybridflow {hybridflow.__version__} from {hybridflow.__file__}")
PY
hf="$venv/bin/hybridflow"
step "hybridflow list / describe"
"$hf" list
"$hf" describe fraud >describe.txt && head -5 describe.txt
step "hybridflow run fraud --mode batch (2,000 synthetic transactions)"
"$hf" generate fraud --count 2000 --out history
"$hf" run fraud --mode batch --input 'history/*.jsonl' --output out
ls out/alerts*.jsonl >/dev/null
step "hybridflow template build / launch --dry-run"
"$hf" template build fraud
test -f templates/fraud/Dockerfile -a -f templates/fraud/requirements.txt -a -f templates/fraud/metadata.json
"$hf" template launch fraud --project my-project --region us-central1 --param output=gs://my-bucket/fraud \
  --param max_num_workers=5 --param sdk_container_image=us-central1-docker.pkg.dev/my-project/hybridflow/fraud:x \
  --dry-run
step "passed"

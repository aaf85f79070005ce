#!/usr/bin/env bash
# Installs Apache Airflow with its Beam and Google providers in a venv of its
# own (Airflow pins its dependencies in ways that conflict with Beam's in one
# venv; the Beam provider 6.3 refuses to build its operator without the Google
# provider, whatever the runner), to run
# the DAGs `hybridflow airflow-dag` writes (`airflow dags test`) and the local
# Airflow API server the Airflow launcher is tested against:
#
#   ~/.cache/hybridflow/airflow/venv-<AIRFLOW>/bin/airflow
#
# The DAGs start `hybridflow` from the project's own venv, so hybridflow is not
# installed here. Every package is pinned by tools/airflow/constraints.txt (the
# set pip resolved once, as Airflow's own constraint files do: resolving the
# Google provider from scratch took pip 22 minutes of backtracking here).
# Idempotent: a second run does nothing.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/../pins.sh"
PYTHON=${PYTHON:-python3}
ROOT=${HYBRIDFLOW_TOOLS_HOME:-$HOME/.cache/hybridflow}/airflow
VENV=$ROOT/venv-$AIRFLOW_VERSION
STAMP=$VENV/.provisioned
WANT="apache-airflow==$AIRFLOW_VERSION apache-airflow-providers-apache-beam==$AIRFLOW_BEAM_PROVIDER_VERSION apache-airflow-providers-google==$AIRFLOW_GOOGLE_PROVIDER_VERSION"
RECIPE="$WANT $(sha256sum "$HERE/constraints.txt" | cut -d' ' -f1)"
if [[ -f $STAMP && $(cat "$STAMP") == "$RECIPE" && ${FORCE:-0} != 1 ]]; then
  echo "airflow $AIRFLOW_VERSION: already provisioned ($VENV)"
  exit 0
fi
echo "airflow $AIRFLOW_VERSION: pip install $WANT"
started=$SECONDS
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# shellcheck disable=SC2086
"$VENV/bin/python" -m pip install --quiet -c "$HERE/constraints.txt" $WANT
"$VENV/bin/airflow" version >/dev/null
echo "$RECIPE" > "$STAMP"
echo "airflow $AIRFLOW_VERSION: installed in $((SECONDS - started)) s -> $VENV"

# Sourced by the provisioning scripts: the version pins, read from
# hybridflow/_pins.py (the one place they are written). Variables already set
# in the environment win, so `BEAM_VERSION=2.62.0 tools/flink/provision.sh`
# still works for experiments.
_pins_file="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/hybridflow/_pins.py"
_pin() { sed -n "s/^$1 = \"\\(.*\\)\"\$/\\1/p" "$_pins_file"; }
BEAM_VERSION=${BEAM_VERSION:-$(_pin BEAM_VERSION)}
FLINK_VERSION=${FLINK_VERSION:-$(_pin FLINK_VERSION)}
PRISM_VERSION=${PRISM_VERSION:-$(_pin PRISM_VERSION)}
SPARK_VERSION=${SPARK_VERSION:-$(_pin SPARK_VERSION)}
JOB_SERVICE_VERSION=${JOB_SERVICE_VERSION:-$(_pin JOB_SERVICE_VERSION)}
FLINK_OPERATOR_VERSION=${FLINK_OPERATOR_VERSION:-$(_pin FLINK_OPERATOR_VERSION)}
AIRFLOW_VERSION=${AIRFLOW_VERSION:-$(_pin AIRFLOW_VERSION)}
AIRFLOW_BEAM_PROVIDER_VERSION=${AIRFLOW_BEAM_PROVIDER_VERSION:-$(_pin AIRFLOW_BEAM_PROVIDER_VERSION)}
AIRFLOW_GOOGLE_PROVIDER_VERSION=${AIRFLOW_GOOGLE_PROVIDER_VERSION:-$(_pin AIRFLOW_GOOGLE_PROVIDER_VERSION)}
if [[ -z $BEAM_VERSION || -z $FLINK_VERSION || -z $SPARK_VERSION || -z $JOB_SERVICE_VERSION || -z $PRISM_VERSION ]]; then
  echo "tools/pins.sh: cannot read the pins from $_pins_file" >&2
  exit 1
fi
# Where Beam's Python SDK looks for cached jars and the Prism binary.
BEAM_CACHE=${BEAM_CACHE:-$HOME/.apache_beam/cache}
need() {  # need COMMAND WHAT-TO-INSTALL
  command -v "$1" >/dev/null 2>&1 || { echo "$(basename "$0"): '$1' not found: install $2" >&2; exit 1; }
}

#!/usr/bin/env bash
# The fresh-machine check: run CI (or the command given) on a clone of the committed HEAD with an
# empty HOME, so that every runner, jar, Go binary, Python package and service is provisioned by the
# project's own files, never found where an earlier session left it.
#
#   tools/fresh-machine.sh              # HYBRIDFLOW_REQUIRE_SERVICES=1 .ci/run (~25 minutes on 2 cores)
#   tools/fresh-machine.sh make demo    # any other command
#
# Empty HOME means empty ~/.apache_beam (Prism, Flink job server), ~/.cache (pip, Go build cache,
# hybridflow's services), ~/go (Go modules), ~/.m2 (Maven). PATH keeps the system directories and the
# Python interpreter's own directory (resolved through pyenv-style shims), and loses every other
# directory under the old HOME (e.g. ~/go/bin), so a tool installed there by hand cannot help.
# Only the committed state is tested: commit first. The clone stays in /tmp/hybridflow-fresh.* (the
# last line says where) for a look at its outputs; delete it when done.
set -euo pipefail
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
work=$(mktemp -d /tmp/hybridflow-fresh.XXXXXX)
git clone -q "$repo" "$work/repo"
mkdir "$work/home"

python=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')
path=$(dirname "$python")
IFS=: read -r -a dirs <<< "$PATH"
for d in "${dirs[@]}"; do
  case "$d" in "$HOME"|"$HOME"/*) ;; *) path="$path:$d" ;; esac
done

cd "$work/repo"
echo "fresh-machine check of $(git rev-parse --short HEAD) in $work (HOME=$work/home)"
started=$SECONDS
status=0
env -u GOPATH -u GOMODCACHE -u GOCACHE -u GOBIN -u GOFLAGS -u XDG_CACHE_HOME -u PIP_CACHE_DIR \
    -u PIP_FIND_LINKS -u MAVEN_OPTS -u VIRTUAL_ENV -u PYTHONPATH \
    HOME="$work/home" PATH="$path" HYBRIDFLOW_REQUIRE_SERVICES=1 "${@:-.ci/run}" || status=$?
echo "fresh-machine check: exit $status after $(( (SECONDS - started) / 60 )) min $(( (SECONDS - started) % 60 )) s; clone in $work"
exit $status

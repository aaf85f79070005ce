# hybridflow — the two commands: `make demo` and `make test`.
# Everything they need is installed here; nothing is assumed on the machine
# beyond Python 3.11 (and, for the runner/service targets, Java 17, Maven, Go).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
DEMO_HISTORY := data/sample-history
DEMO_OUTPUT  := output/demo

.PHONY: demo test test-deep release-check test-beam-range lock fresh-machine bench bench-nexmark bench-streaming soak venv venv-test lint clean help system-packages tools tools-runners tools-prism tools-flink tools-spark tools-services tools-orchestration tools-lane-go tools-lane-maven tools-lane-pip

help:
	@echo "make demo   - install into $(VENV), generate a sample history, run the fraud pipeline in batch"
	@echo "make test   - install the test extra and run the test suite"
	@echo "make test-deep - the property tests with ten times the examples, random seeds (hypothesis profile deep)"
	@echo "make fresh-machine - make test's CI run on a clone of HEAD with an empty HOME (tools/fresh-machine.sh)"
	@echo "make bench  - hybridflow vs idiomatic Beam vs DuckDB, batch (BENCH_N=1000000; never part of make test), then make bench-nexmark"
	@echo "make bench-nexmark - Nexmark Q0-Q5, Q7, Q8: hybridflow vs Beam's own queries vs DuckDB (NEXMARK_BIDS=1000000, NEXMARK_REPEAT=3, NEXMARK_BEAM_REPEAT=1: Beam runs per query and runner, 1-2.5 min each per million bids)"
	@echo "make bench-streaming - alert latency and sustained rates: BENCH_RUNNERS='prism flink' x BENCH_SOURCES='synthetic kafka' x BENCH_RATES='2000 5000 10000' (each ladder stops at its first unsustained rate), BENCH_DURATION=90"
	@echo "make soak   - 30 minutes at 5,000 events/s on Flink, latency and RSS slope per process every 5 minutes (SOAK_RUNNER, SOAK_RATE, SOAK_DURATION)"
	@echo "make release-check - build sdist + wheel, twine check, run the CLI from the wheel in a clean venv"
	@echo "make test-beam-range - the transform tests with the newest Beam release of the supported range"
	@echo "make lock   - regenerate the flex templates' hashed requirements lock (pip-compile --generate-hashes)"
	@echo "make clean  - remove outputs (keeps $(VENV))"
	@echo "make tools  - provision the local runners (Prism binary, Flink and Spark job server jars) into ~/.apache_beam/cache (cached)"
	@echo "make tools-services - provision the local test services and the Kafka expansion service (cached)"
	@echo "make tools-orchestration - provision Airflow (own venv) and the Flink Kubernetes Operator CRDs (cached)"

# constraints.txt pins the Beam the local runners are built for; the package itself accepts a range.
$(VENV)/.stamp-base: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt -e .
	touch $@

$(VENV)/.stamp-test: $(VENV)/.stamp-base pyproject.toml constraints.txt Makefile
	$(PIP) install --quiet -c constraints.txt -e '.[test,bench,gcp,aws,monitoring,kafka,postgres,iceberg,hdfs,k8s,release]'
	touch $@

# Debian packages the monitoring tests run (Prometheus scrapes a live
# pipeline; a Pushgateway takes a batch job's final metrics; headless
# Chromium renders the batch report): installed with
# apt-get when their command is missing. Without them those tests skip
# (or fail under HYBRIDFLOW_REQUIRE_SERVICES=1).
SYSTEM_PACKAGES := prometheus prometheus-pushgateway chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
system-packages:
	@missing=""; for p in $(SYSTEM_PACKAGES); do command -v $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install$$missing"; \
	  ( $(SUDO) apt-get update -qq && \
	    $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing ) \
	  || echo "could not install$$missing: the tests that need them will skip"; \
	fi

venv: $(VENV)/.stamp-base
venv-test: $(VENV)/.stamp-test

$(DEMO_HISTORY)/.done: | $(VENV)/.stamp-base
	$(VENV)/bin/hybridflow generate fraud --count 40000 --out $(DEMO_HISTORY)
	touch $@

demo: $(VENV)/.stamp-base $(DEMO_HISTORY)/.done
	$(VENV)/bin/hybridflow run fraud --mode batch --profile direct \
		--input '$(DEMO_HISTORY)/*.jsonl' --output $(DEMO_OUTPUT) --overwrite

# ---------------------------------------------------------------------------
# Local runners and services, provisioned with package clients only (go, mvn)
# into the places Beam looks, so nothing is downloaded at run time. Each step
# is idempotent: a second `make tools` does nothing. The Beam version comes from
# hybridflow/_pins.py (tools/pins.sh reads it), so the Python SDK, Prism and
# the Flink job server always agree.
#
# `tools` is everything tests and demos need: the runners, the local
# services with the Kafka expansion service, and the orchestration tools.
# On a fresh machine it runs three lanes at once, so that downloads overlap
# with builds: Go builds, Maven steps (one at a time: they share ~/.m2) and
# pip venvs. The tools-runners/-services/-orchestration targets do the same
# steps in groups.
tools:
	$(MAKE) --no-print-directory -j3 --output-sync=line tools-lane-go tools-lane-maven tools-lane-pip

tools-lane-go:
	PYTHON=$(PYTHON) tools/prism/provision.sh
	PYTHON=$(PYTHON) tools/services/provision.sh pubsub bigtable

tools-lane-maven:
	tools/flink/provision.sh
	tools/spark/provision.sh
	PYTHON=$(PYTHON) tools/services/provision.sh kafka
	tools/kafka/provision.sh
	tools/hdfs/provision.sh
	PYTHON=$(PYTHON) tools/k8s/provision.sh

tools-lane-pip:
	PYTHON=$(PYTHON) tools/services/provision.sh s3 gcs bigquery postgres
	PYTHON=$(PYTHON) tools/airflow/provision.sh

tools-runners: tools-prism tools-flink tools-spark

tools-prism:
	PYTHON=$(PYTHON) tools/prism/provision.sh

tools-flink:
	tools/flink/provision.sh

tools-spark:
	tools/spark/provision.sh

# Airflow in its own venv (runs the DAGs `hybridflow airflow-dag` writes) and the Flink Kubernetes
# Operator's CRDs (validate `hybridflow k8s` manifests), under ~/.cache/hybridflow.
tools-orchestration:
	PYTHON=$(PYTHON) tools/k8s/provision.sh
	PYTHON=$(PYTHON) tools/airflow/provision.sh

# Local services for the connector tests (Kafka broker, Beam's Java Kafka IO and Hadoop's MiniDFSCluster from Maven, the
# Pub/Sub fake and Bigtable emulator from Go, moto / gcp-storage-emulator / bqemulator in their own
# venvs, Debian's PostgreSQL), under ~/.cache/hybridflow; idempotent, seconds when cached.
tools-services:
	PYTHON=$(PYTHON) tools/services/provision.sh all
	tools/kafka/provision.sh
	tools/hdfs/provision.sh

# The suite, then the release as users get it and the newest Beam of the supported range, each
# time-boxed (a hung step fails instead of eating CI's time).
test: $(VENV)/.stamp-test system-packages tools
	$(PY) -m pytest
	timeout 20m $(MAKE) release-check
	timeout 25m $(MAKE) test-beam-range

# The sdist and wheel built, checked and run from a clean venv (tools/release-check.sh).
release-check: $(VENV)/.stamp-test
	PYTHON=$(PYTHON) BUILD_PYTHON=$(abspath $(PY)) tools/release-check.sh

# The transform tests with the highest Beam of pyproject.toml's range (the lowest is .venv's pin).
test-beam-range:
	PYTHON=$(PYTHON) tools/beam-range.sh

# The flex templates' requirements lock: hybridflow's runtime requirements and its gcp extra at
# exact versions with their hashes, Beam at the constraints.txt pin, resolved by pip-compile for the
# template image's platform (Linux x86_64, CPython 3.11: this machine's).
lock: $(VENV)/.stamp-test
	$(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --extra gcp \
	    --no-emit-find-links --no-emit-index-url --no-emit-trusted-host \
	    --constraint constraints.txt --output-file hybridflow/flex/requirements.lock pyproject.toml

# The property tests with the hypothesis profile `deep`: random seeds, ten times the examples.
test-deep: $(VENV)/.stamp-test
	HYPOTHESIS_PROFILE=deep $(PY) -m pytest tests/transforms/test_properties.py

# CI as a new machine runs it: a clone of HEAD, an empty HOME, empty caches.
fresh-machine:
	tools/fresh-machine.sh

# Benchmarks (bench/README in the main README): data cached in bench/data (gitignored),
# results as JSON in bench/results. BENCH_N may list several sizes: BENCH_N="100000 1000000".
BENCH_N ?= 1000000
BENCH_FLAGS ?=
bench: $(VENV)/.stamp-test
	PYTHONWARNINGS=ignore $(PY) -m bench.run $(foreach n,$(BENCH_N),--n $(n)) $(BENCH_FLAGS)
	$(MAKE) --no-print-directory bench-nexmark

# Nexmark (bench/nexmark): hybridflow vs Beam's own queries (FnApiRunner, default DirectRunner) vs DuckDB,
# outputs compared, medians of NEXMARK_REPEAT whole-process runs. Smaller: make bench-nexmark NEXMARK_BIDS=100000
NEXMARK_BIDS ?= 1000000
NEXMARK_REPEAT ?= 3
NEXMARK_BEAM_REPEAT ?= 1  # Beam takes 1-2.5 min per query and runner at 1M bids: one run each keeps make bench near 30 min
NEXMARK_QUERIES ?= 0,1,2,3,4,5,7,8
bench-nexmark: $(VENV)/.stamp-test
	PYTHONWARNINGS=ignore $(PY) -m bench.nexmark.run --bids $(NEXMARK_BIDS) --repeat $(NEXMARK_REPEAT) \
		--beam-repeat $(NEXMARK_BEAM_REPEAT) --queries $(NEXMARK_QUERIES)

# Streaming latency / sustained rate (bench/streaming.py): every runner x source, rates from low to
# high up to the first one not sustained; one results JSON in bench/results. Needs the runners (Prism
# binary, Flink job server) and, for the kafka source, the broker and expansion service (make tools).
BENCH_RATES ?= 2000 5000 10000
BENCH_DURATION ?= 90
BENCH_RUNNERS ?= prism flink
BENCH_SOURCES ?= synthetic kafka
bench-streaming: $(VENV)/.stamp-test tools-runners tools-services
	PYTHONWARNINGS=ignore $(PY) -m bench.streaming $(foreach r,$(BENCH_RATES),--rate $(r)) --duration $(BENCH_DURATION) \
		$(foreach r,$(BENCH_RUNNERS),--runner $(r)) $(foreach s,$(BENCH_SOURCES),--source $(s))

# The soak: one long run, latency and per-process RSS slope every SOAK_EVERY seconds.
SOAK_RUNNER ?= flink
SOAK_RATE ?= 5000
SOAK_DURATION ?= 1800
SOAK_EVERY ?= 300
soak: $(VENV)/.stamp-test tools-runners
	PYTHONWARNINGS=ignore $(PY) -m bench.streaming --rate $(SOAK_RATE) --duration $(SOAK_DURATION) \
		--runner $(SOAK_RUNNER) --report_every $(SOAK_EVERY)

clean:
	rm -rf output data/sample-history .pytest_cache

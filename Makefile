# hybridflow — the two commands: `make demo` and `make test`.
# Everything they need is installed here; nothing is assumed on the machine
# beyond Python 3.11 (and, for the runner/service targets, Java 17, Maven, Go).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
DEMO_HISTORY := data/sample-history
DEMO_OUTPUT  := output/demo

.PHONY: demo test venv venv-test lint clean help tools-services

help:
	@echo "make demo   - install into $(VENV), generate a sample history, run the fraud pipeline in batch"
	@echo "make test   - install the test extra and run the test suite"
	@echo "make clean  - remove outputs (keeps $(VENV))"
	@echo "make tools-services - provision the local test services and the Kafka expansion service (cached)"

$(VENV)/.stamp-base: setup.py hybridflow/_pins.py
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.stamp-test: $(VENV)/.stamp-base setup.py Makefile
	$(PIP) install --quiet -e '.[test,bench,gcp,aws,kafka,postgres]'
	touch $@

venv: $(VENV)/.stamp-base
venv-test: $(VENV)/.stamp-test

$(DEMO_HISTORY)/.done: | $(VENV)/.stamp-base
	$(VENV)/bin/hybridflow generate --count 40000 --out $(DEMO_HISTORY)
	touch $@

demo: $(VENV)/.stamp-base $(DEMO_HISTORY)/.done
	rm -rf $(DEMO_OUTPUT)
	$(VENV)/bin/hybridflow run fraud --mode batch --profile direct \
		--input '$(DEMO_HISTORY)/*.jsonl' --output $(DEMO_OUTPUT)

# Local services for the connector tests (Kafka broker and Beam's Java Kafka IO from Maven, the
# Pub/Sub fake and Bigtable emulator from Go, moto / gcp-storage-emulator / bqemulator in their own
# venvs, Debian's PostgreSQL), under ~/.cache/hybridflow; idempotent, seconds when cached.
tools-services:
	PYTHON=$(PYTHON) tools/services/provision.sh all
	tools/kafka/provision.sh

test: $(VENV)/.stamp-test tools-services
	$(PY) -m pytest

clean:
	rm -rf output data/sample-history .pytest_cache

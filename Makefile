# portfolio-tx: set-up, the local stack, tests.
#
#   make run     set everything up, start the stack if none is reachable, run the demo
#   make test    set everything up and run the tests against the real Kafka and Redis
#
# The stack (Kafka KRaft + Redis) comes from scripts/stack: services already reachable at
# KAFKA_BOOTSTRAP_SERVERS / REDIS_URL are used as they are; otherwise docker compose when a
# Docker engine answers; otherwise local processes (Kafka jars from Maven Central, Debian's
# redis-server). `make test` stops what it started itself and leaves running what it found.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
STACK := scripts/stack
# `make test PYTEST_ARGS='-k smoke -x'` to narrow a run.
PYTEST_ARGS ?= -m 'not slow'

.PHONY: help system-deps venv install stack-up stack-down stack-status stack-logs test test-faults run bench lint clean distclean

help:
	@echo "make run | test | test-faults | bench | lint | install | stack-up | stack-down | stack-status | stack-logs | clean | distclean"

venv install: system-deps $(STAMP)

system-deps:
	@scripts/system-deps

# The compiled core (native/, a PyO3 crate) is built from source by pip through maturin
# (its build backend, from PyPI) with the machine's cargo; crates come from crates.io.
NATIVE_SOURCES := native/pyproject.toml native/Cargo.toml native/Cargo.lock $(wildcard native/src/*.rs)

# Re-installs only when pyproject.toml or the crate changes (or the venv is missing).
$(STAMP): pyproject.toml $(NATIVE_SOURCES)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[test,dev]'
	$(BIN)/python -m pip install --disable-pip-version-check -q ./native
	@touch $@

stack-up:
	$(STACK) up

stack-down:
	$(STACK) down

stack-status:
	$(STACK) status

stack-logs:
	$(STACK) logs

# Runs $(1) with the stack's KAFKA_BOOTSTRAP_SERVERS / REDIS_URL exported and prints the
# stack's logs when it fails. With $(2) = stop, stops the services this invocation started.
define with_stack
	out="$$($(STACK) up)" || { echo "make: scripts/stack up failed" >&2; $(STACK) logs -n 60 >&2; exit 1; }; \
	started="$$(sed -n 's/^PTX_STACK_STARTED=//p' <<<"$$out")"; \
	export $$(grep -E '^(KAFKA_BOOTSTRAP_SERVERS|REDIS_URL)=' <<<"$$out"); \
	echo "make: KAFKA_BOOTSTRAP_SERVERS=$$KAFKA_BOOTSTRAP_SERVERS REDIS_URL=$$REDIS_URL"; \
	rc=0; $(1) || rc=$$?; \
	if [ "$$rc" -ne 0 ]; then echo "make: exit code $$rc; tail of the stack logs:" >&2; $(STACK) logs -n 60 >&2; fi; \
	if [ "$(2)" = stop ]; then \
	  for service in $${started//,/ }; do $(STACK) stop-$$service || true; done; \
	elif [ -n "$$started" ]; then echo "make: the stack is left running (make stack-down stops it)"; fi; \
	exit $$rc
endef

test: install
	@$(call with_stack,$(BIN)/pytest $(PYTEST_ARGS),stop)

# The fault scenarios, long variants included.
FAULTS_ARGS ?=
test-faults: install
	@export PTX_FAULTS_LONG=1; $(call with_stack,$(BIN)/pytest -m faults $(FAULTS_ARGS),stop)

run: install
	@$(call with_stack,$(BIN)/portfolio-tx demo,keep)

# `make bench BENCH_ARGS='--scale 0.05'` for a quick run; the full one loads 1,001,000 events.
BENCH_ARGS ?=
bench: install
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[bench]'
	@$(call with_stack,$(BIN)/python bench/run.py $(BENCH_ARGS),stop)

lint: install
	$(BIN)/ruff check . scripts/stack
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf build dist .pytest_cache .hypothesis .mypy_cache .ruff_cache artifacts
	find . -path ./.venv -prune -o \( -name __pycache__ -o -name '*.egg-info' \) -type d -print0 | xargs -0 rm -rf

# Also stops the stack and removes the venv, the Kafka jar cache and the stack's state.
distclean: clean
	-$(STACK) down
	rm -rf $(VENV) .cache .stack

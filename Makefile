# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both install the locked environment into .local/venv first; all state lives under .local/.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .local/venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PIP_INSTALL := $(VENV)/bin/pip install -q --disable-pip-version-check --no-compile
# A bytecode cache halves every task's start-up (feast ~9 s cold, ~5 s cached); some shells disable it.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install demo test test-services airflow serve erase bench bench-smoke lint lock bytecode-lock clean compose-tool bench-tools browser-tool

# uv reads no pip configuration, so it is handed the find-links and indexes pip is configured with
# (this machine kind keeps the lock's CPU build of torch in a find-links folder): `pip config list`
# prints each setting's sources, the environment's first, with Python's repr (a value written over
# several lines holds \n); one index-url, the first. uv trusts the system's certificates, as pip here.
PIP_SOURCES = $$($(VENV)/bin/pip config list | sed -n -E "s/^[^.]*\.(find-links|extra-index-url|index-url)='(.*)'$$/\1 \2/p" \
	| sed 's/\\n/ /g' | while read -r option urls; do for url in $$urls; do echo "$$option $$url"; done; done \
	| awk '!seen[$$1 == "index-url" ? $$1 : $$0]++ { print "--" $$1, $$2 }')
UV_PIP := UV_LINK_MODE=copy UV_NATIVE_TLS=1 $(VENV)/bin/uv pip

$(STAMP): requirements.lock pyproject.toml bytecode.lock
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: this project needs Python 3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	@# the lock is complete (make lock freezes setuptools too), so nothing is resolved (--no-deps).
	@# uv, at the lock's own version (BentoML needs it too), unpacks it in ~12 s, two pips in ~60 s;
	@# like pip it takes a version from whichever index has it. uv pip check fails the install if the
	@# lock ever lacks a dependency.
	$(PIP_INSTALL) --no-deps $$(grep '^uv==' requirements.lock)
	$(UV_PIP) install -q --python $(PY) --no-deps --index-strategy unsafe-best-match $(PIP_SOURCES) -r requirements.lock
	$(UV_PIP) check -q --python $(PY)
	$(UV_PIP) install -q --python $(PY) --no-deps --no-build-isolation -e .
	$(PY) -m lifecycle.devtools.bytecode compile
	touch $(STAMP)

install: $(STAMP)

demo: install  ## the main job on the embedded default, through a real Airflow scheduler
	$(PY) -m lifecycle.devtools.demo

# make test runs three pytest processes at once, each with its own state folder and ports: the
# end-to-end scheduler loop, the tests that start live services or a scheduler (SERVED), and the
# rest (a new test file joins the rest). Much of the first two waits on schedulers and servers, and
# the loop's competing processes are shared with any loop running at once (.ci/run's scale-out
# suite). Their output follows the rest's.
SERVED := tests/integration/test_canary.py tests/integration/test_live_service.py \
	tests/integration/test_performance.py tests/integration/test_second_use_case.py tests/integration/test_real_data.py \
	tests/integration/test_erasure.py
test: install compose-tool browser-tool  ## unit, DAG integrity, compose file, dag.test() runs, live services, end-to-end scheduler test
	@mkdir -p .local/ci
	@$(PY) -m pytest tests/e2e --state-name e2e-run -p no:cacheprovider > .local/ci/test-e2e.log 2>&1 & e2e=$$!; \
	$(PY) -m pytest $(SERVED) --state-name served -p no:cacheprovider > .local/ci/test-served.log 2>&1 & served=$$!; \
	$(PY) -m pytest tests/unit tests/dags tests/integration $(SERVED:%=--ignore=%); status=$$?; \
	wait $$served; served_status=$$?; wait $$e2e; e2e_status=$$?; \
	echo "==== $(SERVED): exit $$served_status (.local/ci/test-served.log) ===="; cat .local/ci/test-served.log; \
	echo "==== tests/e2e: exit $$e2e_status (.local/ci/test-e2e.log) ===="; cat .local/ci/test-e2e.log; \
	exit $$((status || served_status || e2e_status))

test-services: install  ## the scale-out profile against real PostgreSQL, Redis, an S3 server, Celery workers
	$(PY) -m pytest tests/services --state-name services

airflow: install  ## the profile's processes on the same state, UI at http://localhost:8080 (user admin)
	$(PY) -m lifecycle.platform.setup && $(PY) -m lifecycle.platform.cluster up

serve: install  ## the live model service alone on the same state, http://localhost:3000 (follows the registry)
	$(PY) -m lifecycle.platform.setup && $(PY) -m lifecycle.platform.cluster run model

erase: install  ## the erase DAG on the same state, in-process: make erase IDS_FILE=ids.txt REASON="request 123" [ENTITY=card_id]
	$(PY) -m lifecycle.platform.erase --ids-file "$(IDS_FILE)" --reason "$(REASON)" $(if $(ENTITY),--entity "$(ENTITY)")

bench: install bench-tools  ## the live service's speed table (bench/serving.py); the other benches: bench/README.md
	$(PY) bench/serving.py

# make bench-smoke runs every bench at a small size, one after another, and stops at the first that
# fails: a bench nothing runs breaks silently when the code it measures changes. Its figures measure
# nothing. Each bench's output goes to .local/bench/smoke/<bench>.log; its last 30 lines are printed,
# or the log's last 80 lines when it fails. .ci/run runs it after the suites.
BENCH_SMOKE := "serving.py --smoke" "scoring.py --rows 20000" "scale.py --rows 20000" "training.py --rows 20000" \
	"gpu.py --rows 20000" "scaleout.py --smoke" "orchestration.py --smoke"
bench-smoke: install bench-tools  ## every bench in bench/ at a small size (~5-6 min), failing on the first that cannot run
	@mkdir -p .local/bench/smoke; started=$$SECONDS; \
	for bench in $(BENCH_SMOKE); do \
	  log=.local/bench/smoke/$${bench%%.py*}.log; start=$$SECONDS; echo "==== bench/$$bench"; \
	  $(PY) bench/$$bench > $$log 2>&1 || { status=$$?; tail -n 80 $$log; \
	    echo "bench-smoke: bench/$$bench failed (exit $$status after $$((SECONDS - start)) s; its log: $$log)"; exit $$status; }; \
	  tail -n 30 $$log; echo "(bench/$$bench: $$((SECONDS - start)) s; its log: $$log)"; \
	done; echo "bench-smoke: every bench ran, $$((SECONDS - started)) s"

LINTED := include dags tests plugins bench

lint: install  ## ruff's rules, its Airflow rules (AIR, some only in preview, which the others do not run in), its format
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff check --select AIR --preview $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)

lock:  ## re-resolve requirements.in into requirements.lock (deliberate upgrades only)
	rm -rf .local/lockenv && $(PYTHON) -m venv .local/lockenv
	.local/lockenv/bin/pip install -q -r requirements.in
	set -o pipefail; { echo "# Locked, tested set for Python 3.11 (make lock regenerates it from requirements.in)."; \
	  .local/lockenv/bin/pip freeze --all --exclude-editable | grep -v '^pip=='; } > requirements.lock
	rm -rf .local/lockenv
	@echo "requirements.lock rewritten: run make bytecode-lock to record bytecode.lock anew"

bytecode-lock: install  ## record bytecode.lock anew: the folders a demo imports from, in a site-packages without bytecode
	find $(VENV) -name __pycache__ -type d -prune -exec rm -rf {} +
	$(PY) -m lifecycle.devtools.demo
	$(PY) -m lifecycle.devtools.bytecode record
	touch $(STAMP)  # the environment is the one just recorded: no reinstall for the new lock

clean:
	rm -rf .local/state

compose-tool:  ## Debian's docker-compose 1.29, which tests/unit/test_compose.py validates docker-compose.yaml with
	command -v docker-compose >/dev/null || (apt-get update -qq && apt-get install -y -qq docker-compose)

browser-tool:  ## Debian's Chromium, the real browser the offline Data Docs test reads pages with
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

bench-tools:  ## Debian's wrk, the HTTP load generator bench/serving.py drives the live service with
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)

# Two commands: `make run` (platform + demo data on the embedded default) and
# `make test` (the whole suite). Both need only Python 3.11 on the machine.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: run test install lint lock-check clean

# Both commands need the test/dev lock: it is the runtime lock (requirements/lock.txt, all the
# production image installs) plus pytest, moto, ruff, the embedded PostgreSQL/Redis and honcho.
# Reinstalls when either lock changes.
$(INSTALLED): requirements/lock.txt requirements/lock-test.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed (set PYTHON=/path/to/python3.11)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/lock-test.txt
	@touch $(INSTALLED)

install: $(INSTALLED)

run: install
	$(PY) scripts/run.py

test: install
	$(PY) -m config.devservices -- $(PY) scripts/test.py

lint: install
	$(VENV)/bin/ruff check apps config devtools tests scripts benchmarks

# Is requirements/lock.txt exactly what base.in needs, and lock-test.txt the rest? (`scripts/lock.py split` fixes)
lock-check: install
	$(PY) scripts/lock.py check

clean:
	rm -rf var/test-media .pytest_cache

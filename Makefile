# The two commands a fresh machine needs: `make demo` and `make test`.
# Both create .venv and install the project on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench simulate clean

$(STAMP): pyproject.toml protocol/_treehash.c protocol/_recordfast.c protocol/_piiplain.c protocol/_verify.c
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m tools.demo

# -n auto: one worker process per core (at most four), each taking whole test files
# (tests/conftest.py); --durations=15: the slowest fifteen tests are listed wherever the
# suite runs (CI's log too). Plain `pytest` runs everything in one process.
test: $(STAMP)
	$(PY) tests/browser.py
	$(PY) -m pytest -q -n auto --maxprocesses 4 --dist loadfile --durations=15

bench: $(STAMP)
	$(PY) -m tools.bench_protocol

simulate: $(STAMP)
	$(PY) -m tools.simulate --seeds 1000 --nodes 4..31

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info

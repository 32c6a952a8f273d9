# Entry points for a fresh machine (see README):
#   make demo   create .venv, install, run the end-to-end DSID demo on the synthetic set
#   make test   create .venv, install, chromium for the browser test (.ci/browser), run the test suite
# The project's other checks (.ci/run runs them after make test):
#   make lint           ruff over src, tests, bench, tools
#   make docs           the documentation site, mkdocs build --strict (broken links and references fail)
#   make check-figures  rerun the commands behind the figures in README.md and docs/, fail with a diff on a change
#   make figures        the same, rewriting the blocks; make figures-all adds the slow real-face benches
#   make typecheck      mypy over src/unmask (configured in pyproject.toml)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO_OUT ?= runs/demo

.PHONY: demo test install clean lint docs typecheck figures figures-all check-figures

$(BIN)/unmask: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@# the contrib build replaces the plain one (older venvs of this project had it): both own cv2/
	$(BIN)/python -m pip uninstall -q -y opencv-python-headless 2>/dev/null || true
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[all]"
	@touch $@

install: $(BIN)/unmask

demo: install
	$(BIN)/unmask demo --out $(DEMO_OUT)

test: install
	bash .ci/browser
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests bench tools

docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

figures: install
	$(BIN)/python tools/figures.py

figures-all: install
	$(BIN)/python tools/figures.py --slow

check-figures: install
	$(BIN)/python tools/figures.py --check

# mypy over src/unmask at the strictness pyproject.toml's [tool.mypy] sets (files, overrides)
typecheck: install
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build site src/*.egg-info

# Entry points for a fresh machine (see README):
#   make demo   create .venv, install, run the end-to-end DSID demo on the synthetic set
#   make test   create .venv, install, chromium for the browser test (.ci/browser), run the test suite
#   make typecheck   mypy over src/unmask (configured in pyproject.toml)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO_OUT ?= runs/demo

.PHONY: demo test typecheck install clean

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

# mypy over src/unmask at the strictness pyproject.toml's [tool.mypy] sets (files, overrides)
typecheck: install
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build src/*.egg-info

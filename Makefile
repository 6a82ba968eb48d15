# The two commands: `make demo` runs the platform end to end, `make test` runs the tests.
# Both create .venv with pip on first use and reuse it afterwards (reinstalling when
# pyproject.toml changes). torch comes from pip like everything else; no model is downloaded.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.kinora-installed

.PHONY: install demo test dashboard serve clean-data bench-generation

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/kinora demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

dashboard: $(STAMP)
	$(BIN)/kinora dashboard

serve: $(STAMP)
	$(BIN)/kinora serve

clean-data:
	rm -rf .kinora

# The two commands: `make demo` runs the platform end to end, `make test` runs the tests.
# Both create .venv with pip on first use and reuse it afterwards (reinstalling when
# pyproject.toml changes). torch comes from pip like everything else; no model is downloaded.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.kinora-installed

.PHONY: install demo test dashboard serve clean-data bench-generation bench-analytics screenshots chromium

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/kinora demo

# The dashboard's browser test drives Debian's Chromium (no browser download): install it once.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { echo "installing Debian's chromium for the dashboard's browser test"; \
	    $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq chromium >/dev/null || \
	    { $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	      $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq chromium >/dev/null; }; }

# The suite on the embedded SQLite store, then every test that opens a store again on PostgreSQL
# (a fresh database per test) when a server answers at TEST_POSTGRES_URL (CI and the dev machines).
TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
export TEST_POSTGRES_URL

test: $(STAMP) chromium
	$(BIN)/python -m pytest -q
	@if $(BIN)/python -c "import sqlalchemy as sa, os; sa.create_engine(os.environ['TEST_POSTGRES_URL'], connect_args={'connect_timeout': 3}).connect().close()" 2>/dev/null; then \
	  echo "PostgreSQL pass: the tests that open a store, on $(TEST_POSTGRES_URL)"; \
	  TEST_STORE=postgresql $(BIN)/python -m pytest -q -m store; \
	else echo "no PostgreSQL at $(TEST_POSTGRES_URL): the PostgreSQL pass did not run"; fi

dashboard: $(STAMP)
	$(BIN)/kinora dashboard

serve: $(STAMP)
	$(BIN)/kinora serve

bench-analytics: $(STAMP)
	$(BIN)/python benchmarks/analytics.py

# The README's dashboard screenshots, over the demo's data (run `make demo` first).
screenshots: $(STAMP) chromium
	$(BIN)/kinora analytics refresh >/dev/null
	$(BIN)/python -m streamlit run dashboards/app.py --server.headless true --server.port 8599 \
	  --browser.gatherUsageStats false --client.toolbarMode minimal & pid=$$!; sleep 8; \
	  $(BIN)/python -m dashboards.browse http://127.0.0.1:8599 --out docs/screenshots --height 2000 >/dev/null; \
	  status=$$?; kill $$pid; exit $$status

clean-data:
	rm -rf .kinora

# The two commands the README shows are `make run` and `make test`; the rest are their parts.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: run test test-chaos test-cluster lint venv broker stop tools contract messages bench clean

run: venv broker
	$(BIN)/policytrack up

# The suite in TEST_WORKERS processes (pytest-xdist), each with its own broker and ports; a
# test module stays in one process, so its module-scoped services are started once.
TEST_WORKERS ?= 3
test: venv tools
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --durations=25 $(PYTEST_ARGS)

# The in-process tests alone (domain, service layer, pages; no broker): the edit-test loop.
test-unit: venv tools
	$(BIN)/pytest -n $(TEST_WORKERS) tests/unit $(PYTEST_ARGS)

# ruff (lint and format) and mypy --strict over everything (the tests and benchmarks too); the layer contracts.
lint: venv
	$(BIN)/ruff check shared services policytrack tests bench
	$(BIN)/ruff format --check shared services policytrack tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# A few minutes of kills and a broker restart under load; prints what it counted.
test-chaos: venv tools
	$(BIN)/pytest -m chaos -s tests/chaos $(PYTEST_ARGS)

# Three brokers, two instances of every service, a broker stopped and instances killed under load.
test-cluster: venv tools
	$(BIN)/pytest -m cluster -s tests/cluster $(PYTEST_ARGS)

venv: $(INSTALLED)

$(INSTALLED):
	@command -v $(PYTHON) >/dev/null || { echo "python3 not found: install Python 3.11+"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

# kcat is how people look at the topics by hand (the tests check what it shows); the audit
# store's PostgreSQL path is tested against a real server (Debian's postgresql); the dashboard
# is tested in Debian's chromium, driven through its chromium-driver, with Debian's CJK fonts
# (the pages and the printed report are in Chinese first); the report's PDF is laid out by
# WeasyPrint on Debian's Pango and read back in the tests with poppler's pdftotext.
tools:
	@missing=""; command -v kcat >/dev/null || missing="$$missing kcat"; \
	  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	  command -v chromium >/dev/null || missing="$$missing chromium"; \
	  command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	  ls /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc >/dev/null 2>&1 || missing="$$missing fonts-noto-cjk"; \
	  ls /usr/lib/*/libpangoft2-1.0.so.0 >/dev/null 2>&1 || missing="$$missing libpangoft2-1.0-0"; \
	  command -v pdftotext >/dev/null || missing="$$missing poppler-utils"; \
	  if [ -n "$$missing" ]; then echo "installing$$missing (Debian packages)"; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing >/dev/null; fi

broker: venv
	deploy/kafka.sh start

stop:
	deploy/kafka.sh stop

contract: venv
	$(BIN)/python -m shared.contract.generate

# The messages people read, extracted from the code and templates; each language's catalog is
# updated with the new ones (untranslated until a translator fills them in; a test fails till then).
messages: venv
	$(BIN)/pybabel --quiet extract -F babel.cfg -k NP_:1c,2 --no-location --sort-by-file --omit-header -o shared/i18n/messages.pot .
	$(BIN)/pybabel --quiet update -i shared/i18n/messages.pot -d shared/i18n/locales --omit-header --ignore-obsolete -w 120

# wrk drives the HTTP benchmarks. Each benchmark writes bench/results/<name>.json; the report
# renders docs/BENCHMARKS.md and its plot from them. BENCH_SCALE=small ends within minutes.
bench: venv broker
	@command -v wrk >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq wrk >/dev/null; }
	rm -f bench/results/*.json
	$(BIN)/python -m bench.decode
	$(BIN)/python -m bench.broker_start
	$(BIN)/python -m bench.kafka_throughput
	$(BIN)/python -m bench.tasks_service
	$(BIN)/python -m bench.audit_service
	$(BIN)/python -m bench.audit_store
	$(BIN)/python -m bench.provenance
	$(BIN)/python -m bench.transparency
	$(BIN)/python -m bench.reports
	$(BIN)/python -m bench.notifications_service
	$(BIN)/python -m bench.latency
	$(BIN)/python -m bench.cluster
	$(BIN)/python -m bench.transactions
	$(BIN)/python -m bench.report

clean:
	deploy/kafka.sh stop
	rm -rf $(VENV) .data

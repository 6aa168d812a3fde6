# The provenance ledger: `make run` and `make test` are all a new user needs.
# Every target installs what is missing first (tools/bootstrap.sh, idempotent).

SHELL := /bin/bash
export SOLCX_BINARY_PATH := $(CURDIR)/.venv/toolchain/solcx
export PATH := $(CURDIR)/.venv/toolchain/bin:$(CURDIR)/.venv/bin:$(PATH)
# brownie's throwaway test chain listens here; make refuses to reuse whatever already does.
BROWNIE_TEST_PORT := 8545

.PHONY: install compile artifacts lint test mutants run bench-gas bench-write bench-index bench-api bench-cli clean i18n

install:
	@tools/bootstrap.sh

compile: install
	@brownie compile

# Compile and refresh the committed ABI/bytecode copy the Python client loads.
artifacts: compile
	@python tools/export_artifacts.py

# Gates: the formatter, the linter (bugbear and friends), strict types, and a complexity
# ceiling (radon rank C: no function in ledger/ or api/ above 20). Configured in pyproject.toml.
LINT := $(CURDIR)/.venv/toolchain/lint/bin
lint: install
	$(LINT)/ruff format --check .
	$(LINT)/ruff check .
	$(LINT)/mypy --python-executable .venv/bin/python
	$(LINT)/xenon --max-absolute C ledger api

test: install lint
	@python tools/port_free.py $(BROWNIE_TEST_PORT) "brownie's test chain"
	brownie test tests/contracts
	python -m pytest -p no:pytest-brownie tests --ignore=tests/contracts

# Mutation check of the contract (docs/MUTANTS.md): each mutant in a temporary copy, on a
# chain of its own (never $(BROWNIE_TEST_PORT)). `make mutants MUTANTS_ARGS="--only NAME"` runs one.
mutants: install
	python tools/mutants.py $(MUTANTS_ARGS)

# The shopper's pages in es/fr/de (api/locale/*/LC_MESSAGES/messages.po): bring the
# catalogues up to the sources (new messages untranslated, translations kept), then list
# what still needs translating (tests/api/test_i18n.py fails until nothing does).
i18n: install
	python tools/i18n.py extract
	python tools/i18n.py check

run: install
	provenance run

bench-gas: install
	python bench/gas.py

bench-write: install
	python bench/write.py

bench-index: install
	python bench/index.py

# Start-up of the `provenance` command (--help, an argument error, one registration on
# a chain of its own) beside `pip --version`: docs/BENCHMARKS.md, "CLI start-up".
bench-cli: install
	python bench/cli.py

bench-api: install
	@command -v wrk >/dev/null || { echo "make bench-api needs wrk: apt-get install wrk"; exit 2; }
	python bench/web.py

clean:
	rm -rf build reports .pytest_cache .hypothesis

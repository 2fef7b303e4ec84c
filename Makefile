# Every target that needs the virtual environment makes it first when it is missing,
# so `make demo` and `make test` are each one command on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: refine setup demo test test-long model-long check lint typecheck bench bench-quick proofs vectors study clean mutation

setup: $(STAMP)

# The interop peers are part of the set-up: mls-rs (pip extra) and ts-mls (npm, pinned by
# interop/ts-mls/package-lock.json; needs Node.js >= 20 on PATH).
$(STAMP): pyproject.toml interop/ts-mls/package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,interop]'
	cd interop/ts-mls && npm ci --no-audit --no-fund
	# the report's browser test renders the page in Debian's headless Chromium
	command -v chromium >/dev/null || (apt-get update && \
		apt-get install -y --no-install-recommends chromium)
	touch $(STAMP)

# The main job: a demonstration of the whole system on the in-process default.
demo: $(STAMP)
	$(BIN)/mlsvc demo

# The default test suite (bounded Hypothesis profile "ci").
test: $(STAMP)
	HYPOTHESIS_PROFILE=ci $(BIN)/pytest -q

# Longer Hypothesis profiles, for the model exploration and property tests.
test-long: $(STAMP)
	HYPOTHESIS_PROFILE=long $(BIN)/pytest -q -m "slow or not slow"

# The refinement test, long profile: the model judges the implementation (refine/,
# docs/REFINEMENT.md); the default run has the short profile (tests/refinement).
refine: $(STAMP)
	$(BIN)/mlsvc model refine --profile long

# The model exploration alone, long profile (also part of test-long).
model-long: $(STAMP)
	$(BIN)/mlsvc model explore --profile long

check: lint typecheck

lint: $(STAMP)
	$(BIN)/ruff check impl model proofs refine tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

vectors: $(STAMP)
	$(BIN)/mlsvc vectors

proofs: $(STAMP)
	$(BIN)/mlsvc proofs

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench

bench-quick: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench --quick

# Mutation testing (mutmut) of every module of vc/, ext/ and ds/, outside the default test
# run; prints the score, per package too (docs/MUTATION.md). Long: run it in the background.
mutation: $(STAMP)
	$(BIN)/pip install --quiet -e '.[mutation]'
	$(BIN)/python tools/mutation.py

# The cost study of draft-00 §6-§8 (docs/COSTS.md): CSV files and PNG plots in docs/costs/.
study: $(STAMP)
	$(BIN)/pip install --quiet -e '.[study]'
	$(BIN)/mlsvc study costs --out docs/costs

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

# The soak of issue 12 (item 9): 10,000 operations with the DS's faults and crashes
# restarted from one SQLite file (4 emulators, 3 groups, mls-rs and ts-mls peers beside
# ours); prints operations per second, exits non-zero on a violation. Long (the
# simulation does a few operations per second): outside `make test`, which runs the
# short version (tests/unit/test_vc_soak_short.py). The full JSON goes to SOAK_JSON.
.PHONY: soak coverage
SOAK_DB   ?= $(or $(TMPDIR),/tmp)/mlsvc-soak.db
SOAK_JSON ?= $(basename $(SOAK_DB)).json
SOAK_OPS  ?= 10000
soak: $(STAMP)
	rm -f $(SOAK_DB) $(SOAK_DB)-wal $(SOAK_DB)-shm
	$(BIN)/mlsvc vc simulate --emulators 4 --groups 3 --peers mlsvc,mls-rs,ts-mls \
		--ops $(SOAK_OPS) --seed 3 --store sqlite:$(SOAK_DB) --faults --crash-rate 0.02 \
		--json > $(SOAK_JSON); rc=$$?; \
	$(BIN)/python -c 'import json, sys; d = json.load(open(sys.argv[1])); \
		keys = ("ops", "seconds", "ops_per_second", "crashes", "restarts", \
		        "emulators_added", "emulators_removed", "removals_finished", \
		        "messages_lost", "violations"); \
		print("soak: " + ", ".join(f"{k} {d[k]}" for k in keys))' $(SOAK_JSON); \
	exit $$rc

# Branch coverage (coverage.py) of the protocol layer: vc/, ext/, ds/, over the default
# test run; prints the table with the lines and branches no test reaches.
COVERAGE_PKGS := impl/mlsvc/vc,impl/mlsvc/ext,impl/mlsvc/ds
coverage: $(STAMP)
	$(BIN)/pip install --quiet -e '.[coverage]'
	HYPOTHESIS_PROFILE=ci $(BIN)/coverage run --branch --source=$(COVERAGE_PKGS) \
		-m pytest -q -p no:cacheprovider
	$(BIN)/coverage report --show-missing --skip-covered

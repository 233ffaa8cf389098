# Two commands for newcomers: `make demo` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv
NIGHT  ?= 2026-11-20

.PHONY: demo test env browser lint samples model bench bench-api cluster-smoke clean

env: $(VENV)/.installed

# The environment is rebuilt whenever the lock file changes (uv is pinned; the lock pins the rest).
# Byte-code is compiled at install: where PYTHONDONTWRITEBYTECODE is set (as on our CI machines),
# every process would otherwise recompile sklearn, pandas, Airflow… on import (~10 s per task).
$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.8
	$(UV) pip sync --quiet --compile-bytecode --python $(BIN)/python requirements.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	$(BIN)/python -m compileall -q triage dags
	touch $@

# Headless Chromium + ChromeDriver for the browser tests, and a CJK font so pages and screenshots
# show Chinese rather than empty boxes (Debian packages; needs root or sudo).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && fc-list | grep -qi wqy || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver fonts-wqy-microhei >/dev/null; }

demo: env
	NIGHT=$(NIGHT) scripts/demo.sh

# pytest exit code 5 means no tests were collected: for this suite that is a broken discovery, so
# it fails loudly instead of passing as "nothing failed".
test: env browser
	@$(BIN)/python -m pytest -n auto; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (exit 5) - test discovery is broken" >&2; exit 1; fi; \
	exit $$rc

lint: env
	$(BIN)/ruff check triage dags tests scripts
	$(BIN)/ruff format --check triage dags tests scripts

# Regenerate the shipped sample data and the shipped champion model (deterministic, seeded).
samples: env
	$(BIN)/python scripts/make_samples.py

model: env
	$(BIN)/python scripts/train_champion.py

# End-to-end benchmark of the nightly pipeline on generated input (see bench/README.md).
BENCH_N ?= 100000
BENCH_DB ?= sqlite
bench: env
	$(BIN)/python bench/run_pipeline.py --n $(BENCH_N) --db $(BENCH_DB)

# API load on 1M tickets in PostgreSQL with wrk (Debian package, installed here if missing).
bench-api: env
	@command -v wrk >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/python bench/api_load.py --tickets 1000000 --duration 30

# The production profile on this machine (PostgreSQL, Redis, CeleryExecutor, two workers) and a
# worker killed mid-task; stops everything it started (see docs/deploy.md).
cluster-smoke: env
	scripts/cluster_smoke.sh

clean:
	rm -rf var

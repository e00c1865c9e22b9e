# A new user runs `make bench` and `make test`; nothing else is needed on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.invobench-installed
# torch first and pinned: an unpinned torch resolves to a multi-GB CUDA build on CPU machines.
TORCH_SPEC ?= torch==2.13.0

.PHONY: bench bench-ci test test-all test-browser browser install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

# Local runs land in results/local/ (git-ignored); committed reference runs live beside it in results/.
BENCH_DIR ?= results/local
SUITE ?= smoke

bench: $(STAMP)
	@mkdir -p $(BENCH_DIR)
	@stamp=$$(date -u +%Y%m%dT%H%M%SZ); \
	out="$(BENCH_DIR)/$(SUITE)-$$stamp.jsonl"; html="$(BENCH_DIR)/$(SUITE)-$$stamp-report.html"; \
	$(PY) -m invobench run $(SUITE) --out "$$out" && \
	$(PY) -m invobench report "$$out" -o "$$html" && \
	echo "results: $$out" && echo "report:  $$html"

# The report's browser test needs Debian's chromium + chromedriver (Playwright's own browser download
# does not work offline). Installing needs root and apt; where that fails the test skips with the reason.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	    { (apt-get update -q && apt-get install -y -q chromium chromium-driver) >/dev/null 2>&1 || \
	      echo "note: could not install chromium/chromium-driver; the browser test will skip"; }

# The architecture first (seconds): the layering and no-cycles contracts of pyproject.toml's [tool.importlinter].
test: $(STAMP) browser
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -m "not slow and not gpu" -q

test-browser: $(STAMP) browser
	$(PY) -m pytest tests/report/test_browser.py -q -rs -s

# pytest-benchmark regression benchmarks against the stored baseline (see benchmarks/README.md)
bench-ci: $(STAMP)
	$(PY) -m pytest benchmarks -p no:cacheprovider --benchmark-autosave \
	    --benchmark-compare=benchmarks/baseline/cpu-2core.json \
	    --benchmark-group-by=group --benchmark-columns=min,median,iqr,rounds --benchmark-sort=name

test-all: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache

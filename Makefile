# A new user runs `make bench` and `make test`; nothing else is needed on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.invobench-installed
# torch first and pinned: an unpinned torch resolves to a multi-GB CUDA build on CPU machines. pyproject.toml
# declares the range the package supports (torch >= 2.11, triton >= 3.6: the GPU machine's image, `make compat`);
# these exact pins keep the CPU reference numbers reproducible.
TORCH_SPEC ?= torch==2.13.0
TRITON_SPEC ?= triton==3.9.0; platform_system == 'Linux'

.PHONY: bench bench-ci bench-baseline test test-all test-browser browser install clean reference docs screenshot \
	compat gpu-wheels gpu-rehearsal gpu-check

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "$(TORCH_SPEC)" "$(TRITON_SPEC)"
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

# pytest-benchmark timings of every variant at two paper shapes, shown beside this machine's stored
# baseline (benchmarks/baseline/<machine>.json) when there is one. It only displays: a baseline from
# another day or machine is no reference for a pass/fail verdict. The gate is `invobench ab` (docs/gate.md).
bench-ci: $(STAMP)
	@machine=$$($(PY) -m invobench env --slug); baseline=benchmarks/baseline/$$machine.json; \
	if [ -f $$baseline ]; then compare="--benchmark-compare=$$baseline"; \
	    echo "bench-ci displays timings beside $$baseline; it does not gate (use invobench ab)"; \
	else compare=""; echo "bench-ci displays timings; no baseline for $$machine (make bench-baseline); it does not gate"; fi; \
	$(PY) -m pytest benchmarks -p no:cacheprovider --benchmark-autosave $$compare \
	    --benchmark-group-by=group --benchmark-columns=min,median,iqr,rounds --benchmark-sort=name

# This machine's pytest-benchmark baseline: a reference run like results/<machine>/ (make reference runs it too)
bench-baseline: $(STAMP)
	@machine=$$($(PY) -m invobench env --slug); \
	$(PY) -m pytest benchmarks -p no:cacheprovider -q --benchmark-json=benchmarks/baseline/$$machine.json

test-all: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache

# The GPU machine (docs/gpu.md): one H100 with its own image (torch 2.11, triton 3.6, no network), lent rarely.
# compat: the package on the image's torch and triton, in a stand-in environment outside the repository
#   (COMPAT_ENV, a few GB, made once): imports, list, check on the CPU variants, the Triton tests.
# gpu-wheels: the wheels the image lacks (tools/gpu_wheels.txt) for its Python into .gpu-wheels/ (git-ignored).
# gpu-rehearsal: tools/gpu_check.sh end to end here on the CPU, in the stand-in (the CUDA steps say so and skip).
# gpu-check: the check itself, on the GPU machine (carry .gpu-wheels/cp312 there).
COMPAT_ENV ?= $(HOME)/.cache/invobench-compat-torch2.11
GPU_PYTHON_VERSION ?= 3.12
GPU_WHEELS ?= .gpu-wheels/cp$(subst .,,$(GPU_PYTHON_VERSION))
GPU_OUT ?= results/local/gpu-check

compat: $(STAMP)
	COMPAT_ENV="$(COMPAT_ENV)" DEV_PYTHON=$(PY) tools/compat_check.sh all

gpu-wheels: $(STAMP)
	$(PY) tools/gpu_wheels.py download $(GPU_WHEELS) --python-version $(GPU_PYTHON_VERSION)

gpu-rehearsal: $(STAMP)
	COMPAT_ENV="$(COMPAT_ENV)" DEV_PYTHON=$(PY) tools/compat_check.sh prepare
	rm -rf $(GPU_OUT)-rehearsal
	PYTHON="$(COMPAT_ENV)/bin/python" tools/gpu_check.sh $(GPU_OUT)-rehearsal

gpu-check:
	tools/gpu_check.sh $(GPU_OUT)

# Reference runs of this machine: one results file per suite in results/<machine>/ (the machine's name
# from `invobench env --slug`), replacing the previous one only when the new run finished; then the
# generated tables of README.md, docs/ and results/README.md are rewritten from them. Run it on a quiet
# machine: nothing else should compete for the cores while it measures.
REFERENCE_SUITES ?= smoke cpu paper models
reference: $(STAMP)
	@machine=$$($(PY) -m invobench env --slug) && mkdir -p results/$$machine && \
	for suite in $(REFERENCE_SUITES); do \
	    out=results/$$machine/$$suite.jsonl; tmp=results/local/reference-$$machine-$$suite.jsonl; \
	    mkdir -p results/local && rm -f $$tmp && \
	    $(PY) -m invobench run $$suite --out $$tmp && mv $$tmp $$out || exit 1; \
	done
	$(MAKE) bench-baseline docs

# README.md, docs/*.md and results/README.md: rewrite every generated block from the committed reference runs
docs: $(STAMP)
	$(PY) tools/docs_tables.py

# README's picture of the report's verdict section, from the committed CPU reference run (needs chromium: make browser)
SCREENSHOT_RUN ?= results/amd-epyc-avx512-2c/cpu.jsonl
SCREENSHOT_SECTION ?= verdict
screenshot: $(STAMP) browser
	$(PY) -m invobench report $(SCREENSHOT_RUN) -o results/local/screenshot-report.html --screenshot docs/img/report.png --section $(SCREENSHOT_SECTION)

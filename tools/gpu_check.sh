#!/usr/bin/env bash
# tools/gpu_check.sh OUT_DIR: every GPU path of the project checked in one command, on the GPU machine's own
# image, with no network (docs/gpu.md). Run from anywhere; OUT_DIR must be empty or new.
#
# 1. install: the carried wheels (.gpu-wheels/cp3XX, `make gpu-wheels`) and the project, --no-deps, into a
#    temporary target on PYTHONPATH; the image's torch, triton and CuPy are never touched
# 2. in the background, a quick sharded pass of the suite that fills the compile caches (numbers discarded);
#    meanwhile env and list, the suite's duration estimate, NVRTC modules compiled in parallel
# 3. side by side: pytest -m gpu, invobench check on CUDA (every GPU variant and dtype), compute-sanitizer
#    memcheck of each CUDA kernel on a small case
# 4. the gpu-quick suite alone on the GPU (results file + roofline), then one ncu line per kernel
# 5. the HTML report and summary.md
# Every step is time-boxed (`timeout`) within a deadline for the whole check (GPU_CHECK_DEADLINE_S, 570 s),
# a failed step does not stop the next, and whatever was written stays. Without CUDA (the CPU rehearsal,
# make gpu-rehearsal) the steps that need it say so and are skipped. OUT_DIR gets at most five files:
# gpu-quick.jsonl, report.html, gpu_check.log, summary.md, ncu.csv. Exit 1 names each step that failed.
#
# Environment: PYTHON (python3: the image's), GPU_WHEELS_ROOT (.gpu-wheels), GPU_CHECK_DEADLINE_S (570),
# GPU_CHECK_JOBS (the CPU count).
set -uo pipefail

if [ $# -ne 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
OUT=$1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT" || { echo "error: cannot create OUT_DIR $OUT"; exit 2; }
OUT=$(cd "$OUT" && pwd)
if [ -n "$(ls -A "$OUT")" ]; then
    echo "error: OUT_DIR $OUT is not empty ($(ls "$OUT" | head -3 | tr '\n' ' ')); give an empty or new folder"
    exit 2
fi
cd "$ROOT" || exit 2

export PYTHON=${PYTHON:-python3}
export WHEELS_ROOT=${GPU_WHEELS_ROOT:-.gpu-wheels}
DEADLINE_S=${GPU_CHECK_DEADLINE_S:-570}
JOBS=${GPU_CHECK_JOBS:-$(nproc)}
RESERVE_S=40  # kept back for the report and summary.md
export WORK; WORK=$(mktemp -d "${TMPDIR:-/tmp}/invobench-gpu-check.XXXXXX")
export SITE=$WORK/site
export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
LOG=$OUT/gpu_check.log
RESULTS=$OUT/gpu-quick.jsonl
STEPS=$WORK/steps.tsv
: >"$STEPS"
exec > >(tee -a "$LOG") 2>&1
TEE_PID=$!
START=$SECONDS

banner() { printf '\n======== %s  [%s s]\n' "$*" "$((SECONDS - START))"; }
left() { echo $((DEADLINE_S - (SECONDS - START) - ${1:-$RESERVE_S})); }
slug() { echo "$1" | tr -c 'A-Za-z0-9\n' '_'; }
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$(printf '%s' "$4" | tr '\t\n' '  ' | cut -c1-160)" >>"$STEPS"; }
last_line() { grep -v '^\s*$' "$1" 2>/dev/null | tail -1 | sed 's/\x1b\[[0-9;]*m//g'; }

# finish NAME RC SECONDS BOX LOGFILE [warn]: the step's status from its exit code; `warn`: a failure is a warning
finish() {
    local name=$1 rc=$2 secs=$3 box=$4 file=$5 soft=${6:-}
    local status note
    note=$(last_line "$file")
    if [ "$rc" -eq 0 ]; then status=ok
    elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then status="timed out"; note="after ${box} s; last line: $note"
    else status="FAILED (exit $rc)"; fi
    if [ "$status" != ok ] && [ "$soft" = warn ]; then status="warning: $status"; fi
    record "$name" "$status" "$secs" "$note"
    echo "-------- $name: $status (${secs} s)"
}

skip() { banner "$1"; echo "skipped: $2"; record "$1" skipped 0 "$2"; }

# step NAME BOX [warn] -- COMMAND...: in the foreground, output shown as it comes
step() {
    local name=$1 box=$2 soft=""; shift 2
    if [ "$1" = warn ]; then soft=warn; shift; fi
    [ "$1" = -- ] && shift
    local remaining; remaining=$(left "${STEP_RESERVE:-$RESERVE_S}")
    if [ "$remaining" -lt 10 ]; then
        banner "$name"; echo "not run: the check's deadline (${DEADLINE_S} s) is too close"
        record "$name" "${soft:+warning: }not run" 0 "deadline ${DEADLINE_S} s reached"; return
    fi
    [ "$box" -gt "$remaining" ] && box=$remaining
    banner "$name (at most ${box} s)"
    local file; file=$WORK/$(slug "$name").log
    local t0=$SECONDS
    timeout -k 10 "$box" "$@" 2>&1 | tee "$file"
    finish "$name" "${PIPESTATUS[0]}" $((SECONDS - t0)) "$box" "$file" "$soft"
}

# spawn NAME BOX [warn] -- COMMAND...: in the background; `collect` waits for every spawned step
SPAWNED=()
spawn() {
    local name=$1 box=$2 soft=""; shift 2
    if [ "$1" = warn ]; then soft=warn; shift; fi
    [ "$1" = -- ] && shift
    local remaining; remaining=$(left)
    if [ "$remaining" -lt 10 ]; then
        record "$name" "${soft:+warning: }not run" 0 "deadline ${DEADLINE_S} s reached"; return
    fi
    [ "$box" -gt "$remaining" ] && box=$remaining
    local s; s=$(slug "$name")
    echo "started in the background: $name (at most ${box} s)"
    ( t0=$SECONDS; timeout -k 10 "$box" "$@" >"$WORK/$s.log" 2>&1; echo "$? $((SECONDS - t0)) $box" >"$WORK/$s.rc" ) &
    SPAWNED+=("$name|$soft|$!")
}
collect() {
    local entry name soft pid s rc secs box
    for entry in "${SPAWNED[@]}"; do
        IFS='|' read -r name soft pid <<<"$entry"
        wait "$pid"
        s=$(slug "$name")
        read -r rc secs box <"$WORK/$s.rc"
        banner "$name (ran in the background)"
        cat "$WORK/$s.log"
        finish "$name" "$rc" "$secs" "$box" "$WORK/$s.log" "$soft"
    done
    SPAWNED=()
}

install_step() {
    local tag; tag=$("$PYTHON" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")') || return 1
    local dir=$WHEELS_ROOT/$tag
    if ! ls "$dir"/*.whl >/dev/null 2>&1; then
        echo "no carried wheels for $tag in $dir: run \`make gpu-wheels GPU_PYTHON_VERSION=${tag:2:1}.${tag:3}\` here"
        echo "and carry $dir to the GPU machine (docs/gpu.md)"
        return 1
    fi
    echo "python: $("$PYTHON" -c 'import sys; print(sys.executable, sys.version.split()[0])'); target: $SITE"
    "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target "$SITE" "$dir"/*.whl || return 1
    echo "installed $(ls "$dir"/*.whl | wc -l) carried wheels from $dir"
    # the project itself, built with the image's setuptools; the checkout stays importable if that fails
    if "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-index --no-deps --no-build-isolation \
            --no-cache-dir --target "$SITE" . >"$WORK/project-install.log" 2>&1; then
        echo "installed the project into the target"
    else
        echo "note: pip could not install the project (tail below); the commands use the checkout instead"
        tail -5 "$WORK/project-install.log"
    fi
    "$PYTHON" -c 'import torch, triton; print("torch", torch.__version__, "triton", triton.__version__)' || return 1
    "$PYTHON" tools/gpu_wheels.py verify
}
export -f install_step

env_step() {
    "$PYTHON" -m invobench env || return 1
    "$PYTHON" -m invobench list --device cuda || return 1
    "$PYTHON" tools/gpu_check.py available
}
export -f env_step

# ---- 1, 2: install; the prewarm starts; environment, estimate, NVRTC ------------------------------------
banner "invobench GPU check: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(hostname), deadline ${DEADLINE_S} s, $JOBS jobs"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
step "install" 120 -- bash -c install_step
HAVE_CUDA=$("$PYTHON" -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null || echo 0)
NO_CUDA="needs CUDA: torch.cuda.is_available() is False here"
# a quick sharded pass of the suite fills the compile caches (inductor, Triton, NVRTC) while the correctness
# steps run, so the timed run loads its compiles instead of making them; its numbers are thrown away
spawn "prewarm (quick sharded pass, numbers discarded)" 240 warn -- "$PYTHON" tools/gpu_check.py prewarm \
    --dir "$WORK/prewarm" --jobs $((JOBS / 2 > 8 ? 8 : (JOBS / 2 > 0 ? JOBS / 2 : 1)))
step "env and list" 60 -- bash -c env_step
step "estimate" 30 -- "$PYTHON" tools/gpu_check.py estimate
ESTIMATE_S=$("$PYTHON" tools/gpu_check.py estimate --seconds 2>/dev/null || echo "")
step "NVRTC precompile" 90 -- "$PYTHON" tools/gpu_check.py precompile --jobs "$JOBS"

# ---- 3: correctness, side by side (the prewarm still running) -------------------------------------------
banner "correctness: pytest -m gpu, invobench check and compute-sanitizer side by side"
spawn "pytest -m gpu" 180 -- "$PYTHON" -m pytest -m gpu -q -p no:cacheprovider tests
if [ "$HAVE_CUDA" = 1 ]; then
    spawn "invobench check (CUDA)" 180 -- "$PYTHON" tools/gpu_check.py check --out "$WORK/check.json" \
        --jobs $((JOBS > 8 ? 8 : JOBS))
    if command -v compute-sanitizer >/dev/null; then
        spawn "compute-sanitizer memcheck" 180 -- compute-sanitizer --tool memcheck --error-exitcode 97 \
            "$PYTHON" tools/gpu_check.py kernels --case small
    else
        skip "compute-sanitizer memcheck" "compute-sanitizer is not on PATH"
    fi
else
    skip "invobench check (CUDA)" "$NO_CUDA"
    skip "compute-sanitizer memcheck" "$NO_CUDA"
fi
collect

# ---- 4: the measurements, alone on the GPU ---------------------------------------------------------------
step "gpu-quick" 280 -- "$PYTHON" -m invobench run gpu-quick --out "$RESULTS"
if [ "$HAVE_CUDA" = 1 ] && command -v ncu >/dev/null; then
    step "ncu" 90 warn -- ncu --profile-from-start off --clock-control none --kernel-name regex:involution \
        --metrics "$("$PYTHON" -c 'import sys; sys.path.insert(0, "tools"); import gpu_check; print(",".join(gpu_check.NCU_METRICS))')" \
        --csv --page raw --log-file "$OUT/ncu.csv" "$PYTHON" tools/gpu_check.py kernels --case main --profile
elif [ "$HAVE_CUDA" = 1 ]; then
    skip "ncu" "ncu is not on PATH"
else
    skip "ncu" "$NO_CUDA"
fi

# ---- 5: report and summary -------------------------------------------------------------------------------
if [ -s "$RESULTS" ]; then
    STEP_RESERVE=10 step "report" 60 -- "$PYTHON" -m invobench report "$RESULTS" -o "$OUT/report.html"
else
    skip "report" "no results file"
fi
banner "summary"
PYTEST_LINE=$(last_line "$WORK/$(slug "pytest -m gpu").log")
"$PYTHON" tools/gpu_check.py summary --results "$RESULTS" --steps "$STEPS" --out "$OUT/summary.md" \
    --ncu "$OUT/ncu.csv" --check-log "$WORK/$(slug "invobench check (CUDA)").log" \
    ${ESTIMATE_S:+--estimate-s "$ESTIMATE_S"} --pytest-line "$PYTEST_LINE" ||
    { echo "summary.md could not be written from the results; the step table instead:"
      { echo "# GPU check summary (steps only)"; echo; sed 's/\t/ | /g; s/^/| /; s/$/ |/' "$STEPS"; } >"$OUT/summary.md"; }
cat "$OUT/summary.md"

FAILED=$(awk -F'\t' '$2 != "ok" && $2 != "skipped" && $2 !~ /^warning/ {print $1}' "$STEPS" | paste -sd ';' -)
WARNED=$(awk -F'\t' '$2 ~ /^warning/ {print $1}' "$STEPS" | paste -sd ';' -)
banner "done in $((SECONDS - START)) s; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
[ -n "$WARNED" ] && echo "warnings (do not fail the check): $WARNED"
rm -rf "$WORK"
if [ -n "$FAILED" ]; then
    echo "GPU check FAILED at: $FAILED (see $LOG)"
    status=1
else
    echo "GPU check passed$([ "$HAVE_CUDA" = 1 ] || echo " (no CUDA here: a rehearsal, the CUDA steps skipped)")"
    status=0
fi
exec >&- 2>&-  # the log's tee ends with the last line written
wait "$TEE_PID" 2>/dev/null
exit $status
